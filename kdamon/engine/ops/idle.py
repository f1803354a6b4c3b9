"""Idle page tracking from user space: the page_idle bitmap and the frames it can track.

The kernel keeps the idle flag per folio, and only for folios on an LRU
list (``page_idle_get_page()``): a bit written for a frame off the LRU, or
for a tail frame of a transparent huge page, is ignored, and such a frame
always reads back "not idle".  :class:`IdleTracker` therefore looks each
sampled frame up in ``/proc/kpageflags`` first: a tail frame stands for its
folio's head frame, and a folio off the LRU counts as not accessed, as
``damon_pa_young()`` does.  Everything here needs root and a kernel with
``CONFIG_IDLE_PAGE_TRACKING``.
"""

from __future__ import annotations

import os
from pathlib import Path

from kdamon.errors import EngineError

__all__ = ["IdleTracker", "is_idle", "open_idle_bitmap", "set_idle"]

KPF_LRU = 1 << 5
KPF_COMPOUND_HEAD = 1 << 15
KPF_COMPOUND_TAIL = 1 << 16
# Folios are aligned to their size: the head of a tail frame's folio is the frame
# rounded down to the folio's order, the first such candidate flagged as a head.
_MAX_FOLIO_ORDER = 18  # 1 GiB of 4 KiB pages


def open_idle_bitmap(sys_root: Path = Path("/sys")) -> int:
    """Open the idle page bitmap for reading and writing."""
    path = sys_root / "kernel" / "mm" / "page_idle" / "bitmap"
    try:
        return os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError as error:
        raise EngineError(
            f"{path} does not exist: this kernel lacks CONFIG_IDLE_PAGE_TRACKING; use another access check"
        ) from error
    except PermissionError as error:
        raise EngineError(f"cannot open {path}: idle page tracking needs root") from error


def set_idle(bitmap_fd: int, pfn: int) -> None:
    """Mark the page frame idle (bits written as 0 leave other frames alone)."""
    word = (1 << (pfn % 64)).to_bytes(8, "little")
    try:
        os.pwrite(bitmap_fd, word, pfn // 64 * 8)
    except OSError:
        pass  # frames the kernel cannot track: IdleTracker counts them as not accessed


def is_idle(bitmap_fd: int, pfn: int) -> bool:
    try:
        word = int.from_bytes(os.pread(bitmap_fd, 8, pfn // 64 * 8), "little")
    except OSError:
        return True
    return bool(word >> (pfn % 64) & 1)


class IdleTracker:
    """Marks page frames idle and tells which were accessed since (see module docstring)."""

    def __init__(self, proc_root: Path = Path("/proc"), sys_root: Path = Path("/sys")) -> None:
        self._bitmap = open_idle_bitmap(sys_root)
        try:
            self._kpageflags = os.open(proc_root / "kpageflags", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as error:
            os.close(self._bitmap)
            raise EngineError(
                f"cannot open {proc_root / 'kpageflags'} ({error.strerror}): idle page tracking needs root"
            ) from error

    def _flags(self, pfn: int) -> int:
        try:
            return int.from_bytes(os.pread(self._kpageflags, 8, pfn * 8), "little")
        except OSError:
            return 0

    def _head(self, pfn: int) -> tuple[int, int] | None:
        """The folio's head frame and its flags; None if no head is found."""
        flags = self._flags(pfn)
        if not flags & KPF_COMPOUND_TAIL:
            return pfn, flags
        for order in range(1, _MAX_FOLIO_ORDER + 1):
            candidate = pfn & ~((1 << order) - 1)
            flags = self._flags(candidate)
            if flags & KPF_COMPOUND_HEAD:
                return candidate, flags
        return None

    def mark(self, pfn: int) -> None:
        """Mark the folio of frame ``pfn`` idle."""
        head = self._head(pfn)
        if head is not None:
            set_idle(self._bitmap, head[0])

    def accessed(self, pfn: int) -> bool:
        """Whether the folio of frame ``pfn`` was accessed since :meth:`mark`."""
        head = self._head(pfn)
        return head is not None and bool(head[1] & KPF_LRU) and not is_idle(self._bitmap, head[0])

    def close(self) -> None:
        for fd in (self._bitmap, self._kpageflags):
            if fd >= 0:
                os.close(fd)
        self._bitmap = self._kpageflags = -1
