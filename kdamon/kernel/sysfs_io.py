"""Low-level file I/O for DAMON's sysfs tree.

Two layers:

* ``RawFs`` is the injectable system-call layer (``OsFs`` on a real kernel,
  a kernel emulation in the host tests).  It raises ``OSError``.
* ``SysfsIO`` turns values into the exact bytes the kernel wants (plain
  decimal, ``Y``/``N``, keywords), does one ``write(2)`` per value, retries
  ``EBUSY`` a bounded number of times with a doubling back-off, and turns every
  other ``OSError`` into a typed ``KernelError`` (see ``sysfs_errors``).

Nothing here knows the layout of the tree: that is ``sysfs.py``'s business.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

import attrs

from kdamon.errors import BusyError
from kdamon.kernel.sysfs_errors import translate_os_error
from kdamon.kernel.sysfs_nodes import Value

__all__ = ["OsFs", "RawFs", "RetryPolicy", "SysfsIO", "Value"]

_T = TypeVar("_T")


class RawFs(Protocol):
    """The system calls the sysfs driver needs; every method may raise ``OSError``."""

    def read(self, path: Path) -> str:
        """Return the whole content of ``path``."""

    def write(self, path: Path, data: bytes) -> None:
        """Store ``data`` with exactly one ``write(2)`` call."""

    def exists(self, path: Path) -> bool:
        """Whether ``path`` exists (file or directory)."""

    def is_dir(self, path: Path) -> bool:
        """Whether ``path`` is a directory."""

    def listdir(self, path: Path) -> list[str]:
        """Names of the entries of directory ``path``."""

    def mkdir(self, path: Path) -> None:
        """Create directory ``path`` (tracefs instances)."""

    def rmdir(self, path: Path) -> None:
        """Remove directory ``path`` (tracefs instances)."""


class OsFs:
    """``RawFs`` on the real file system: ``os.open``/``os.read``/``os.write``."""

    def read(self, path: Path) -> str:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            chunks = []
            while chunk := os.read(fd, 65536):
                chunks.append(chunk)
        finally:
            os.close(fd)
        return b"".join(chunks).decode()

    def write(self, path: Path, data: bytes) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)  # O_TRUNC: no-op on sysfs
        try:
            written = os.write(fd, data)
        finally:
            os.close(fd)
        if written != len(data):
            raise OSError(errno.EIO, f"short write ({written} of {len(data)} bytes)", str(path))

    def exists(self, path: Path) -> bool:
        return path.exists()

    def is_dir(self, path: Path) -> bool:
        return path.is_dir()

    def listdir(self, path: Path) -> list[str]:
        return os.listdir(path)

    def mkdir(self, path: Path) -> None:
        os.mkdir(path)

    def rmdir(self, path: Path) -> None:
        os.rmdir(path)


@attrs.frozen
class RetryPolicy:
    """How long to retry ``EBUSY``: ``attempts`` tries, sleeping ``first_delay_s``
    doubled after each try and capped at ``max_delay_s`` (defaults: 10 tries,
    about 0.5 s in total)."""

    attempts: int = 10
    first_delay_s: float = 0.005
    max_delay_s: float = 0.08

    def delays(self) -> list[float]:
        """The sleeps between the tries."""
        out, delay = [], self.first_delay_s
        for _ in range(self.attempts - 1):
            out.append(delay)
            delay = min(delay * 2, self.max_delay_s)
        return out


def encode(value: Value) -> bytes:
    """The bytes a sysfs file expects for ``value``: decimal, ``Y``/``N`` or the text."""
    if isinstance(value, bool):
        return b"Y" if value else b"N"
    if isinstance(value, int):
        return str(value).encode()
    return value.encode()


class SysfsIO:
    """Typed, retrying reads and writes of sysfs files.

    ``sleep`` is injectable so that tests of the retry path do not wait.
    """

    def __init__(
        self,
        fs: RawFs | None = None,
        *,
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.fs: RawFs = fs if fs is not None else OsFs()
        self._retry = retry
        self._sleep = sleep

    # -- plumbing -------------------------------------------------------
    def _call(self, path: Path, op: Callable[[], _T], written: str | None) -> _T:
        delays = self._retry.delays()
        for attempt in range(self._retry.attempts):
            try:
                return op()
            except OSError as exc:
                if exc.errno != errno.EBUSY:
                    raise translate_os_error(exc, path, written) from exc
                if attempt == len(delays):
                    total = sum(delays)
                    raise BusyError(
                        f"{path} stayed busy (EBUSY) after {self._retry.attempts} tries over "
                        f"{total:.2f} s: DAMON's single sysfs lock is held by someone else "
                        "(another kdamon or damo process, a DAMON module parameter write, or a "
                        "state command such as update_schemes_tried_regions still waiting for "
                        "its kdamond); wait for it to finish and retry",
                        path=str(path),
                        errno=errno.EBUSY,
                    ) from exc
                self._sleep(delays[attempt])
        raise AssertionError("unreachable")  # pragma: no cover

    # -- reads ----------------------------------------------------------
    def read_str(self, path: Path) -> str:
        """The file's content without its one trailing newline."""
        text = self._call(path, lambda: self.fs.read(path), None)
        return text[:-1] if text.endswith("\n") else text

    def read_int(self, path: Path) -> int:
        text = self.read_str(path)
        try:
            return int(text)
        except ValueError:
            raise translate_os_error(OSError(errno.EINVAL, f"expected a number, read {text!r}"), path, None) from None

    def read_bool(self, path: Path) -> bool:
        return self.read_str(path).strip() in ("Y", "y", "1")

    def exists(self, path: Path) -> bool:
        return self.fs.exists(path)

    def is_dir(self, path: Path) -> bool:
        return self.fs.is_dir(path)

    def listdir(self, path: Path) -> list[str]:
        return self._call(path, lambda: self.fs.listdir(path), None)

    def mkdir(self, path: Path) -> None:
        self._call(path, lambda: self.fs.mkdir(path), None)

    def rmdir(self, path: Path) -> None:
        self._call(path, lambda: self.fs.rmdir(path), None)

    def numeric_subdirs(self, path: Path) -> list[int]:
        """The numeric entries of ``path``, sorted numerically (``ls`` sorts 0 10 2)."""
        return sorted(int(name) for name in self.listdir(path) if name.isdigit())

    # -- writes ---------------------------------------------------------
    def write(self, path: Path, value: Value) -> None:
        """Store ``value`` in ``path`` with a single ``write(2)``."""
        data = encode(value)
        self._call(path, lambda: self.fs.write(path, data), data.decode())
