"""The ways user space can tell whether a process touched a page, for vaddr.

DAMON in the kernel clears and reads the accessed bit of the page table
entry of each sampling address.  User space has coarser or narrower tools;
each :class:`AccessCheck` says in :attr:`AccessCheck.description` what it
observes and what it disturbs:

============== ================= ========== =====================================
kind           sees              per        needs
============== ================= ========== =====================================
``page_idle``  reads and writes  page/folio root, CONFIG_IDLE_PAGE_TRACKING
``soft_dirty`` writes            page       CONFIG_MEM_SOFT_DIRTY
``uffd``       writes            page       the process registers its memory for
                                            userfaultfd async write-protect; 6.7+
``smaps``      reads and writes  mapping    nothing (clear_refs + smaps)
============== ================= ========== =====================================

:func:`host_problem` says why this host cannot offer a kind at all, which
holds while it runs; :func:`process_problem` why a kind cannot watch a
given process now, which can change as the process runs (it may register
memory for userfaultfd later).
"""

from __future__ import annotations

import bisect
import ctypes
import mmap
import os
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from kdamon.engine.ops.common import Addresses, Seen
from kdamon.engine.ops.idle import IdleTracker
from kdamon.engine.ops.pagemap import (
    PM_PFN_MASK,
    PM_PRESENT,
    PM_SOFT_DIRTY,
    PagemapReader,
    WrittenPageScanner,
    has_wp_async_memory,
    pagemap_scan_supported,
)
from kdamon.engine.ops.procfs import (
    CLEAR_REFS_ALL,
    CLEAR_REFS_SOFT_DIRTY,
    clear_refs,
    read_smaps,
)
from kdamon.errors import EngineError

__all__ = [
    "CHECK_DESCRIPTIONS",
    "CHECK_KINDS",
    "AccessCheck",
    "CheckKind",
    "PageIdleCheck",
    "SmapsReferencedCheck",
    "SoftDirtyCheck",
    "UffdWriteCheck",
    "host_problem",
    "open_check",
    "process_problem",
]

CheckKind = Literal["page_idle", "soft_dirty", "uffd", "smaps"]
CHECK_KINDS: tuple[CheckKind, ...] = ("page_idle", "uffd", "soft_dirty", "smaps")
"""Every kind, best first."""


class AccessCheck(Protocol):
    """Clear, then read, the accessed state of the pages at some addresses."""

    kind: CheckKind
    description: str

    def prepare(self, addrs: Addresses) -> None:
        """Start observing the pages of ``addrs`` afresh."""
        ...

    def check(self, addrs: Addresses) -> Seen:
        """Whether each page was accessed since :meth:`prepare`."""
        ...

    def lost(self) -> str | None:
        """Why the check no longer observes its process, None while it does.

        A check holding the process's pagemap sees nothing once the process
        exec'd (a new address space); ``uffd`` sees nothing once the memory
        is no longer registered.  Cheap enough for every update.
        """
        ...

    def close(self) -> None: ...


def _exec_lost(pid: int, reader: PagemapReader | WrittenPageScanner) -> str | None:
    if reader.gone():
        return f"process {pid} replaced its address space (exec)"
    return None


class PageIdleCheck:
    """Idle page tracking: set the page's idle flag, later see whether it was cleared."""

    kind: CheckKind = "page_idle"
    description = (
        "page_idle: sees reads and writes, per page (per huge page for a transparent "
        "huge page), through /sys/kernel/mm/page_idle/bitmap and /proc/kpageflags "
        "(marking a page idle clears its young bits, kept for reclaim as DAMON "
        "does); needs root"
    )

    def __init__(self, pid: int, proc_root: Path = Path("/proc"), sys_root: Path = Path("/sys")) -> None:
        self._tracker = IdleTracker(proc_root, sys_root)
        try:
            self._pagemap = PagemapReader(pid, proc_root)
        except BaseException:
            self._tracker.close()
            raise

    def _pfns(self, addrs: Addresses) -> list[int | None]:
        pfns: list[int | None] = []
        for addr in addrs.tolist():
            entry = self._pagemap.entry(addr)
            pfn = entry & PM_PFN_MASK
            pfns.append(pfn if entry & PM_PRESENT and pfn else None)
        return pfns

    def prepare(self, addrs: Addresses) -> None:
        for pfn in self._pfns(addrs):
            if pfn is not None:
                self._tracker.mark(pfn)

    def check(self, addrs: Addresses) -> Seen:
        return np.array([pfn is not None and self._tracker.accessed(pfn) for pfn in self._pfns(addrs)], dtype=np.bool_)

    def lost(self) -> str | None:
        return _exec_lost(self._pagemap.pid, self._pagemap)

    def close(self) -> None:
        self._pagemap.close()
        self._tracker.close()


class SoftDirtyCheck:
    """Soft-dirty bits: clear them all, later read the sampled pages' bits."""

    kind: CheckKind = "soft_dirty"
    description = (
        "soft_dirty: sees writes only, per page; clearing soft-dirty bits "
        "write-protects every page of the process each sampling interval, so "
        "its next write to each page takes a minor fault"
    )

    def __init__(self, pid: int, proc_root: Path = Path("/proc")) -> None:
        self.pid = pid
        self.proc_root = proc_root
        self._pagemap = PagemapReader(pid, proc_root)

    def prepare(self, addrs: Addresses) -> None:
        clear_refs(self.pid, CLEAR_REFS_SOFT_DIRTY, self.proc_root)

    def check(self, addrs: Addresses) -> Seen:
        return np.array([bool(self._pagemap.entry(a) & PM_SOFT_DIRTY) for a in addrs.tolist()], dtype=np.bool_)

    def lost(self) -> str | None:
        return _exec_lost(self.pid, self._pagemap)

    def close(self) -> None:
        self._pagemap.close()


class UffdWriteCheck:
    """userfaultfd async write-protect read and re-armed through ``PAGEMAP_SCAN``."""

    kind: CheckKind = "uffd"
    description = (
        "uffd: sees writes only, per page, and only in memory the process "
        "registered for userfaultfd async write-protect (elsewhere nothing is "
        "seen); re-protecting a sampled page costs the process a minor fault on "
        "its next write there and may split a transparent huge page"
    )

    def __init__(self, pid: int, proc_root: Path = Path("/proc")) -> None:
        self.pid = pid
        self.proc_root = proc_root
        self._scanner = WrittenPageScanner(pid, proc_root)

    def prepare(self, addrs: Addresses) -> None:
        for addr in addrs.tolist():
            self._scanner.written_and_rearm(addr)

    def check(self, addrs: Addresses) -> Seen:
        return np.array([self._scanner.written_and_rearm(a) is True for a in addrs.tolist()], dtype=np.bool_)

    def lost(self) -> str | None:
        return _exec_lost(self.pid, self._scanner) or process_problem("uffd", self.pid, self.proc_root)

    def close(self) -> None:
        self._scanner.close()


class SmapsReferencedCheck:
    """``clear_refs`` then ``Referenced:`` of the mapping holding each address."""

    kind: CheckKind = "smaps"
    description = (
        "smaps: sees reads and writes, but per mapping (VMA) only: a sample counts "
        "as accessed when any page of its mapping was referenced; writing 1 to "
        "/proc/PID/clear_refs every sampling interval clears the referenced bits "
        "of all the process's pages, which disturbs the kernel's reclaim "
        "decisions (recently used pages look idle)"
    )

    def __init__(self, pid: int, proc_root: Path = Path("/proc")) -> None:
        self.pid = pid
        self.proc_root = proc_root

    def prepare(self, addrs: Addresses) -> None:
        clear_refs(self.pid, CLEAR_REFS_ALL, self.proc_root)

    def check(self, addrs: Addresses) -> Seen:
        vmas = read_smaps(self.pid, self.proc_root)
        starts = [vma.start for vma in vmas]
        seen = np.zeros(addrs.shape[0], dtype=np.bool_)
        for index, addr in enumerate(addrs.tolist()):
            position = bisect.bisect_right(starts, addr) - 1
            if position >= 0 and addr < vmas[position].end:
                seen[index] = vmas[position].referenced_kib > 0
        return seen

    def lost(self) -> str | None:
        """Never: smaps and clear_refs are opened afresh each time."""
        return None

    def close(self) -> None:
        """Nothing held open."""


CHECK_DESCRIPTIONS: dict[CheckKind, str] = {
    check.kind: check.description for check in (PageIdleCheck, SoftDirtyCheck, UffdWriteCheck, SmapsReferencedCheck)
}
"""What each kind of check observes and disturbs."""


def open_check(
    kind: CheckKind, pid: int, proc_root: Path = Path("/proc"), sys_root: Path = Path("/sys")
) -> AccessCheck:
    """An access check of ``kind`` on process ``pid``."""
    if kind == "page_idle":
        return PageIdleCheck(pid, proc_root, sys_root)
    if kind == "soft_dirty":
        return SoftDirtyCheck(pid, proc_root)
    if kind == "uffd":
        return UffdWriteCheck(pid, proc_root)
    return SmapsReferencedCheck(pid, proc_root)


def _soft_dirty_missing(proc_root: Path) -> bool:
    """Whether a page this process just wrote lacks the soft-dirty bit."""
    page = mmap.mmap(-1, mmap.PAGESIZE)
    try:
        page[0] = 1
        address = ctypes.addressof(ctypes.c_char.from_buffer(page))
        reader = PagemapReader(os.getpid(), proc_root)
        try:
            return not reader.entry(address) & PM_SOFT_DIRTY
        finally:
            reader.close()
    finally:
        page.close()


def host_problem(kind: CheckKind, proc_root: Path = Path("/proc"), sys_root: Path = Path("/sys")) -> str | None:
    """Why this host offers checks of ``kind`` to no process, or None if it offers them."""
    if kind == "page_idle":
        path = sys_root / "kernel" / "mm" / "page_idle" / "bitmap"
        if not path.exists():
            return f"{path} is missing (kernel built without CONFIG_IDLE_PAGE_TRACKING)"
        if os.geteuid() != 0 or not os.access(path, os.R_OK | os.W_OK):
            return f"{path} and page frame numbers in pagemap need root"
    if kind == "uffd" and not pagemap_scan_supported(proc_root):
        return "the PAGEMAP_SCAN ioctl is missing (needs Linux 6.7+)"
    if kind == "soft_dirty" and _soft_dirty_missing(proc_root):
        return "a freshly written page shows no soft-dirty bit (kernel built without CONFIG_MEM_SOFT_DIRTY)"
    return None


def process_problem(kind: CheckKind, pid: int, proc_root: Path = Path("/proc")) -> str | None:
    """Why a check of ``kind`` cannot watch process ``pid`` now, or None if it can.

    Only the process's side is looked at (see :func:`host_problem` for the
    host's); for ``uffd`` that is one ``PAGEMAP_SCAN``, cheap enough to ask
    again while the process runs.
    """
    directory = proc_root / str(pid)
    if kind == "page_idle":
        return None
    if kind == "uffd":
        try:
            registered = has_wp_async_memory(pid, proc_root)
        except (EngineError, OSError) as error:  # e.g. exiting meanwhile (ESRCH)
            return str(error)
        if not registered:
            return (
                "the process has no memory registered for userfaultfd async "
                "write-protect; only cooperating processes can be watched so"
            )
        return None
    if kind == "smaps" and not os.access(directory / "smaps", os.R_OK):
        return f"cannot read {directory / 'smaps'}"
    if not os.access(directory / "clear_refs", os.W_OK):
        return f"cannot write {directory / 'clear_refs'} (needs root or the same user)"
    return None
