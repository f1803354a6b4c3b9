"""Files the user named: errors that name them, and outputs replaced only on success.

Every ``OSError`` about a user's file names it (``filename``), so that the
command line can say ``kdamon: error: PATH: REASON``: ``reading(path)`` adds
the name to read errors (a failed ``read(2)`` carries none), and
``require_file``/``require_dir`` check an input's kind before it is used.

Outputs (``record -o``, ``--png``, ``--json``, ``--junit``): a command that
fails half-way must leave the user's file as it was, never truncated.  So the
new content goes to a temporary file beside the target (same directory, hence
same file system), and only ``commit()`` renames it over the target,
atomically: a reader sees the old file or the new one.
Writes may go on after the commit (``kdamon record`` commits once its first
snapshot is in, then keeps appending to the same file).

The replacement keeps what ``open(path, "w")`` would have kept: the old
file's permission bits, its owner when kdamon runs as root, and a symbolic
link (the file it points to is replaced, not the link).  A target that
exists and is not a regular file (a FIFO, a terminal), or is named under
``/dev/`` or ``/proc/``, is written in place: there is no content to lose.
``-``, ``/dev/stdout``, ``/dev/stderr`` and ``/dev/fd/N`` write to kdamon's own
descriptor (``-`` is standard output) (when standard output is redirected to a file, a rename would
move the shell's file away, and a second opening would write over what
kdamon prints).  Only a SIGKILL between creation and commit leaves the
temporary file (``.NAME.partial-PID-XXXX``) behind.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

__all__ = ["STDOUT", "Replacement", "ensure_writable", "reading", "require_dir", "require_file", "write_replacing"]

STDOUT = Path("-")
"""The output file name that means standard output (``check --json -``)."""


def _with_path(error: OSError, path: Path) -> OSError:
    """``error`` about the user's ``path`` (not about a temporary file kdamon made up)."""
    return OSError(error.errno, error.strerror, str(path))


def _error(code: int, path: str | Path) -> OSError:
    return OSError(code, os.strerror(code), str(path))


def _refuse_directory(path: Path, st: os.stat_result) -> None:
    if stat.S_ISDIR(st.st_mode):
        raise _error(errno.EISDIR, path)


_INHERITED = re.compile(r"(-)|/dev/(stdout|stderr)|/(?:dev|proc/self)/fd/(\d+)")


def _inherited_fd(path: Path) -> int | None:
    """kdamon's own descriptor that ``path`` names (``-`` is standard output), if it names one."""
    match = _INHERITED.fullmatch(str(path))
    if match is None:
        return None
    if match[1]:
        return 1
    return {"stdout": 1, "stderr": 2}[match[2]] if match[2] else int(match[3])


def _in_place(path: Path, st: os.stat_result) -> bool:
    """Whether an existing ``path`` is written as it is (see the module docstring)."""
    return not stat.S_ISREG(st.st_mode) or str(path.absolute()).startswith(("/dev/", "/proc/"))


@contextmanager
def reading(path: str | Path) -> Iterator[None]:
    """Name ``path`` in the ``OSError`` of a read inside the block that names no file."""
    try:
        yield
    except OSError as exc:
        if exc.filename is not None:
            raise
        raise _with_path(exc, Path(path)) from exc


def require_file(path: str | Path) -> None:
    """``FileNotFoundError``, ``PermissionError``, ``IsADirectoryError``, ... naming ``path``
    unless it can be read as a file (its first byte, for a regular file; a FIFO is not waited for)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        _refuse_directory(Path(path), st)
        if stat.S_ISREG(st.st_mode):
            with reading(path):
                os.read(fd, 1)
    finally:
        os.close(fd)


def require_dir(path: str | Path) -> None:
    """``FileNotFoundError``, ``NotADirectoryError`` or ``PermissionError`` naming ``path``
    unless it is a directory that can be listed."""
    os.scandir(path).close()


class Replacement:
    """The new content of the user's file ``path``, written beside it until ``commit()``.

    ``stream`` is a binary stream; as a context manager, a block that raises
    discards the new content and one that ends normally commits it.
    """

    def __init__(self, path: str | Path, *, buffering: int = -1) -> None:
        self.path = Path(path)
        self.committed = False
        self._tmp: Path | None = None
        self._final = self.path
        inherited = _inherited_fd(self.path)
        if inherited is not None:
            try:
                fd = os.dup(inherited)
            except OSError as exc:
                raise _with_path(exc, self.path) from None
            self.committed = True
        else:
            try:
                st: os.stat_result | None = os.stat(self.path)
            except FileNotFoundError:
                st = None
            except OSError as exc:
                raise _with_path(exc, self.path) from None
            if st is not None and _in_place(self.path, st):
                _refuse_directory(self.path, st)
                fd = self._open(self.path, os.O_WRONLY | os.O_CLOEXEC)
                self.committed = True
            else:
                self._final = Path(os.path.realpath(self.path))
                self._tmp = self._final.with_name(f".{self._final.name}.partial-{os.getpid()}-{os.urandom(3).hex()}")
                fd = self._open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC)
                if st is not None:
                    self._keep_mode_and_owner(fd, st)
        self.stream: BinaryIO = os.fdopen(fd, "wb", buffering=buffering)

    def _open(self, path: Path, flags: int) -> int:
        try:
            return os.open(path, flags, 0o666)
        except OSError as exc:
            raise _with_path(exc, self.path) from None

    def _keep_mode_and_owner(self, fd: int, st: os.stat_result) -> None:
        try:
            os.fchmod(fd, stat.S_IMODE(st.st_mode))
            if os.geteuid() == 0:
                os.fchown(fd, st.st_uid, st.st_gid)
        except BaseException:
            os.close(fd)
            self._remove_tmp()
            raise

    def _remove_tmp(self) -> None:
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)

    def commit(self) -> None:
        """Put the content written so far in the target's place (idempotent); the stream stays open."""
        if self.committed:
            return
        self.stream.flush()
        assert self._tmp is not None  # uncommitted implies a temporary file
        try:
            os.replace(self._tmp, self._final)
        except OSError as exc:
            raise _with_path(exc, self.path) from None
        self.committed = True

    def discard(self) -> None:
        """Close; unless already committed, drop the new content: the target stays as it was."""
        try:
            self.stream.close()
        finally:
            if not self.committed:
                self._remove_tmp()

    def close(self) -> None:
        """Commit and close."""
        try:
            self.commit()
        except BaseException:
            self.discard()
            raise
        self.stream.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()


def write_replacing(path: str | Path, data: str | bytes) -> None:
    """Replace the user's file ``path`` with ``data`` (text is written as UTF-8) in one step."""
    with Replacement(path) as out:
        out.stream.write(data.encode() if isinstance(data, str) else data)


def ensure_writable(path: str | Path) -> None:
    """Raise the ``OSError`` that writing ``path`` later would meet, now: validate before the work.

    A device or FIFO is not opened (a FIFO's reader would see the end of its data).
    """
    path = Path(path)
    if path == STDOUT:
        return
    try:
        st = os.stat(path)
    except OSError:
        st = None
    if st is None or not _in_place(path, st):
        Replacement(path).discard()
        return
    _refuse_directory(path, st)
    if not os.access(path, os.W_OK):
        raise _error(errno.EACCES, path)
