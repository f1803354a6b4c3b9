"""``/proc/PID/pagemap``: per-page entries and the ``PAGEMAP_SCAN`` ioctl (Linux 6.7+).

:class:`PagemapReader` reads 64-bit entries (soft-dirty bit 55, PFN in bits
0-54 for root).  :class:`WrittenPageScanner` asks ``PAGEMAP_SCAN`` whether a
page was written since it was last write-protected through userfaultfd's
asynchronous write-protect mode, and write-protects it again in the same
call (``PM_SCAN_WP_MATCHING``).  ``PM_SCAN_CHECK_WPASYNC`` makes the kernel
refuse (EPERM) memory that was not registered for async write-protect,
which would otherwise read as "written" every time.
:func:`has_wp_async_memory` tells whether a process registered any such
memory at all.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
from pathlib import Path

from kdamon.engine.ops.procfs import read_maps
from kdamon.engine.regions import PAGE_SIZE
from kdamon.errors import EngineError

__all__ = [
    "PAGEMAP_SCAN",
    "PM_PFN_MASK",
    "PM_PRESENT",
    "PM_SOFT_DIRTY",
    "PagemapReader",
    "WrittenPageScanner",
    "has_wp_async_memory",
    "pagemap_scan_supported",
]

PM_SOFT_DIRTY = 1 << 55
PM_PRESENT = 1 << 63
PM_PFN_MASK = (1 << 55) - 1

PAGE_IS_WPALLOWED = 1 << 0
PAGE_IS_WRITTEN = 1 << 1
PM_SCAN_WP_MATCHING = 1 << 0
PM_SCAN_CHECK_WPASYNC = 1 << 1


class PageRegion(ctypes.Structure):
    """``struct page_region``."""

    _fields_ = [("start", ctypes.c_uint64), ("end", ctypes.c_uint64), ("categories", ctypes.c_uint64)]


class PmScanArg(ctypes.Structure):
    """``struct pm_scan_arg``."""

    _fields_ = [
        (name, ctypes.c_uint64)
        for name in (
            "size",
            "flags",
            "start",
            "end",
            "walk_end",
            "vec",
            "vec_len",
            "max_pages",
            "category_inverted",
            "category_mask",
            "category_anyof_mask",
            "return_mask",
        )
    ]


def _iowr(kind: int, number: int, size: int) -> int:
    return (3 << 30) | (size << 16) | (kind << 8) | number


PAGEMAP_SCAN = _iowr(ord("f"), 16, ctypes.sizeof(PmScanArg))


def _open(path: Path, pid: int) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError as error:
        raise EngineError(f"process {pid} does not exist (no {path})") from error
    except PermissionError as error:
        raise EngineError(
            f"cannot open {path}: reading another process's page table needs root (or CAP_SYS_PTRACE)"
        ) from error


class _Pagemap:
    """An open ``/proc/PID/pagemap``: the address space of the process when it was opened."""

    def __init__(self, pid: int, proc_root: Path = Path("/proc")) -> None:
        self.pid = pid
        self._fd = _open(proc_root / str(pid) / "pagemap", pid)

    def gone(self) -> bool:
        """Whether the address space this was opened on is gone (see :func:`mm_gone`)."""
        return mm_gone(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class PagemapReader(_Pagemap):
    """Random access to a process's pagemap entries."""

    def entry(self, addr: int) -> int:
        """The 64-bit entry of the page holding ``addr`` (0 if unreadable)."""
        try:
            data = os.pread(self._fd, 8, addr // PAGE_SIZE * 8)
        except OSError:
            return 0
        return int.from_bytes(data, "little") if len(data) == 8 else 0


class WrittenPageScanner(_Pagemap):
    """Per-page "written since last check" through ``PAGEMAP_SCAN``."""

    def __init__(self, pid: int, proc_root: Path = Path("/proc")) -> None:
        super().__init__(pid, proc_root)
        self._vec = (PageRegion * 1)()
        self._arg = PmScanArg()
        self._arg.size = ctypes.sizeof(PmScanArg)
        self._arg.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC
        self._arg.vec = ctypes.addressof(self._vec)
        self._arg.vec_len = 1
        self._arg.category_mask = PAGE_IS_WRITTEN
        self._arg.return_mask = PAGE_IS_WRITTEN

    def written_and_rearm(self, addr: int) -> bool | None:
        """Was the page of ``addr`` written since it was last write-protected?

        Write-protects it again.  None when the page is not in memory
        registered for userfaultfd async write-protect (nothing observable).
        """
        page = addr - addr % PAGE_SIZE
        self._arg.start = page
        self._arg.end = page + PAGE_SIZE
        try:
            found = int(fcntl.ioctl(self._fd, PAGEMAP_SCAN, self._arg))
        except OSError as error:
            if error.errno in (errno.EPERM, errno.ENOENT, errno.EFAULT, errno.ESRCH):
                return None
            raise EngineError(
                f"PAGEMAP_SCAN on process {self.pid} failed ({error.strerror}); the kernel may be older than 6.7"
            ) from error
        return found > 0


def mm_gone(fd: int) -> bool:
    """Whether the address space a pagemap descriptor was opened on is gone.

    The descriptor stays bound to the process's address space of the time it
    was opened: after an exec (or exit) the kernel reads nothing through it.
    """
    try:
        return len(os.pread(fd, 8, 0)) != 8
    except OSError:
        return True


def has_wp_async_memory(pid: int, proc_root: Path = Path("/proc")) -> bool:
    """Whether process ``pid`` has memory registered for userfaultfd async write-protect.

    One read of ``/proc/PID/maps`` for the span, then one ``PAGEMAP_SCAN``
    for the first such page: the kernel passes over other mappings without
    walking their pages (about 20 us for 200 mappings here).
    """
    maps = read_maps(pid, proc_root)
    if not maps:
        return False
    fd = _open(proc_root / str(pid) / "pagemap", pid)
    found = (PageRegion * 1)()
    arg = PmScanArg(
        size=ctypes.sizeof(PmScanArg),
        start=maps[0][0],
        end=maps[-1][1],
        vec=ctypes.addressof(found),
        vec_len=1,
        max_pages=1,
        category_mask=PAGE_IS_WPALLOWED,
        return_mask=PAGE_IS_WPALLOWED,
    )
    try:
        return int(fcntl.ioctl(fd, PAGEMAP_SCAN, arg)) > 0
    except OSError as error:
        raise EngineError(
            f"PAGEMAP_SCAN on process {pid} failed ({error.strerror}); the kernel may be older than 6.7"
        ) from error
    finally:
        os.close(fd)


def pagemap_scan_supported(proc_root: Path = Path("/proc")) -> bool:
    """Whether the kernel has ``PAGEMAP_SCAN`` (tried on this process, empty range)."""
    try:
        fd = os.open(proc_root / "self" / "pagemap", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    arg = PmScanArg()
    arg.size = ctypes.sizeof(PmScanArg)
    try:
        fcntl.ioctl(fd, PAGEMAP_SCAN, arg)
    except OSError as error:
        return error.errno not in (errno.ENOTTY, errno.EINVAL, errno.EOPNOTSUPP)
    finally:
        os.close(fd)
    return True
