"""Choosing how to watch a process: the best access check this host offers, and why.

:func:`probe` tries the checks best first (page_idle, uffd, soft_dirty,
smaps) and returns the first usable one with the reasons the others were
passed over.  :func:`ops_for_context` builds the operations set a
:class:`~kdamon.model.config.Context` asks for.
"""

from __future__ import annotations

import ctypes
import mmap
import os
from collections.abc import Callable
from pathlib import Path

import attrs

from kdamon.engine.ops.base import Operations
from kdamon.engine.ops.checks import CHECK_DESCRIPTIONS, CheckKind
from kdamon.engine.ops.paddr import PaddrOps
from kdamon.engine.ops.pagemap import PM_SOFT_DIRTY, PagemapReader, pagemap_scan_supported
from kdamon.engine.ops.procfs import read_smaps
from kdamon.engine.ops.vaddr import VaddrOps
from kdamon.errors import EngineError
from kdamon.model.config import Context

__all__ = ["ProbeResult", "ops_for_context", "probe"]


@attrs.frozen
class ProbeResult:
    """The chosen check for a process and what the others lacked."""

    pid: int
    kind: CheckKind
    description: str
    rejected: tuple[tuple[CheckKind, str], ...]

    def explain(self) -> str:
        lines = [f"process {self.pid}: {self.description}"]
        lines += [f"  not {kind}: {why}" for kind, why in self.rejected]
        return "\n".join(lines)


def _page_idle_problem(sys_root: Path) -> str | None:
    path = sys_root / "kernel" / "mm" / "page_idle" / "bitmap"
    if not path.exists():
        return f"{path} is missing (kernel built without CONFIG_IDLE_PAGE_TRACKING)"
    if os.geteuid() != 0 or not os.access(path, os.R_OK | os.W_OK):
        return f"{path} and page frame numbers in pagemap need root"
    return None


def _uffd_problem(pid: int, proc_root: Path) -> str | None:
    if not pagemap_scan_supported(proc_root):
        return "the PAGEMAP_SCAN ioctl is missing (needs Linux 6.7+)"
    if not any("uw" in vma.flags for vma in read_smaps(pid, proc_root)):
        return ("the process registered no memory for userfaultfd write-protect "
                "(no 'uw' in its smaps VmFlags); only cooperating processes can be watched so")
    return None


def _soft_dirty_problem(pid: int, proc_root: Path) -> str | None:
    page = mmap.mmap(-1, mmap.PAGESIZE)
    try:
        page[0] = 1
        address = ctypes.addressof(ctypes.c_char.from_buffer(page))
        reader = PagemapReader(os.getpid(), proc_root)
        try:
            dirty = bool(reader.entry(address) & PM_SOFT_DIRTY)
        finally:
            reader.close()
    finally:
        page.close()
    if not dirty:
        return ("a freshly written page shows no soft-dirty bit (kernel built without "
                "CONFIG_MEM_SOFT_DIRTY)")
    if not os.access(proc_root / str(pid) / "clear_refs", os.W_OK):
        return f"cannot write {proc_root / str(pid) / 'clear_refs'} (needs root or the same user)"
    return None


def _smaps_problem(pid: int, proc_root: Path) -> str | None:
    if not os.access(proc_root / str(pid) / "smaps", os.R_OK):
        return f"cannot read {proc_root / str(pid) / 'smaps'}"
    if not os.access(proc_root / str(pid) / "clear_refs", os.W_OK):
        return f"cannot write {proc_root / str(pid) / 'clear_refs'} (needs root or the same user)"
    return None


def probe(pid: int, proc_root: Path = Path("/proc"), sys_root: Path = Path("/sys")) -> ProbeResult:
    """The best access check for process ``pid`` on this host, and why."""
    if not (proc_root / str(pid)).exists():
        raise EngineError(f"process {pid} does not exist; give the pid of a running process")
    rejected: list[tuple[CheckKind, str]] = []
    problems: tuple[tuple[CheckKind, Callable[[], str | None]], ...] = (
        ("page_idle", lambda: _page_idle_problem(sys_root)),
        ("uffd", lambda: _uffd_problem(pid, proc_root)),
        ("soft_dirty", lambda: _soft_dirty_problem(pid, proc_root)),
        ("smaps", lambda: _smaps_problem(pid, proc_root)),
    )
    for kind, problem_of in problems:
        problem = problem_of()
        if problem is None:
            return ProbeResult(pid, kind, CHECK_DESCRIPTIONS[kind], tuple(rejected))
        rejected.append((kind, problem))
    raise EngineError(f"no way to watch process {pid} from user space: "
                      + "; ".join(f"{kind}: {why}" for kind, why in rejected))


def ops_for_context(context: Context, proc_root: Path = Path("/proc"),
                    sys_root: Path = Path("/sys")) -> Operations:
    """The operations set for ``context.ops``, with the best check per target."""
    if context.ops == "paddr":
        return PaddrOps(proc_root, sys_root)
    kinds: list[CheckKind] = []
    for index, target in enumerate(context.targets):
        if target.pid is None:
            raise EngineError(f"targets[{index}] has no pid: {context.ops} monitors processes")
        kinds.append(probe(target.pid, proc_root, sys_root).kind)
    return VaddrOps(kinds, fixed=context.ops == "fvaddr", proc_root=proc_root,
                    sys_root=sys_root)
