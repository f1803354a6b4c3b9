"""A streaming writer of the cpio "newc" format the kernel unpacks as an initramfs."""

from __future__ import annotations

import stat
from pathlib import Path, PurePosixPath
from typing import BinaryIO

_TRAILER = "TRAILER!!!"


class CpioWriter:
    """Writes entries once each; parent directories are created implicitly.

    Entries keep the host's modification times so that Python's bytecode caches
    (which record the source mtime) stay valid in the guest.
    """

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._ino = 1
        self._seen: set[str] = set()
        self.size = 0

    def __contains__(self, path: str) -> bool:
        return _norm(path) in self._seen

    def directory(self, path: str, mode: int = 0o755, mtime: int = 0) -> None:
        name = _norm(path)
        if name in self._seen or name == "":
            return
        self._parents(name)
        self._entry(name, stat.S_IFDIR | mode, b"", mtime=mtime)

    def file(self, path: str, data: bytes, mode: int = 0o644, mtime: int = 0) -> None:
        name = _norm(path)
        if name in self._seen:
            return
        self._parents(name)
        self._entry(name, stat.S_IFREG | mode, data, mtime=mtime)

    def copy(self, source: Path, path: str | None = None) -> None:
        """Add a host file (following symlinks) at ``path`` (default: its own absolute path)."""
        st = source.stat()
        self.file(path or str(source), source.read_bytes(), mode=stat.S_IMODE(st.st_mode), mtime=int(st.st_mtime))

    def symlink(self, path: str, target: str) -> None:
        name = _norm(path)
        if name in self._seen:
            return
        self._parents(name)
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def char_device(self, path: str, major: int, minor: int, mode: int = 0o600) -> None:
        name = _norm(path)
        if name in self._seen:
            return
        self._parents(name)
        self._entry(name, stat.S_IFCHR | mode, b"", rdev=(major, minor))

    def close(self) -> None:
        self._entry(_TRAILER, 0, b"", record=False)
        pad = (-self.size) % 512
        self._out.write(b"\0" * pad)
        self.size += pad

    def _parents(self, name: str) -> None:
        for parent in reversed(PurePosixPath(name).parents):
            p = str(parent)
            if p not in (".", "") and p not in self._seen:
                self._entry(p, stat.S_IFDIR | 0o755, b"")

    def _entry(
        self, name: str, mode: int, data: bytes, *, mtime: int = 0, rdev: tuple[int, int] = (0, 0), record: bool = True
    ) -> None:
        encoded = name.encode() + b"\0"
        fields = (self._ino, mode, 0, 0, 1, mtime, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0)
        header = b"070701" + b"".join(b"%08X" % f for f in fields)
        self._ino += 1
        chunk = header + encoded
        chunk += b"\0" * ((-len(chunk)) % 4)
        self._out.write(chunk)
        self._out.write(data)
        pad = (-len(data)) % 4
        self._out.write(b"\0" * pad)
        self.size += len(chunk) + len(data) + pad
        if record:
            self._seen.add(name)


def _norm(path: str) -> str:
    return str(PurePosixPath("/", path)).lstrip("/")
