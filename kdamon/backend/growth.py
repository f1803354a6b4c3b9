"""Appending process targets to a running kernel kdamond (``kdamon record --include-children``).

DAMON matches the targets of a ``commit`` to the running ones by index
(§6.5 of the ABI notes): a commit that appends targets keeps the running ones
and their regions, as long as the existing targets are committed in the same
order and without regions.  Two things make that harder than it looks:

* A target pid is resolved again at every commit, and a pid that no longer
  exists fails the commit (up to 6.14 the kdamond then ends; later kernels
  refuse the commit).  A target whose process is gone is therefore committed
  with the pid of a kernel thread (kthreadd): a kernel thread has no memory,
  so the target keeps its index and its last regions and is seen idle, as a
  process that exited is.  Since that pid never exits, such a kdamond does
  not stop by itself: its owner stops it.
* A new vaddr target gets regions only at the next operations update, and
  every commit postpones that update by a whole update interval (the
  commit re-bases the timers, §9.13).  New targets are therefore committed
  with the initial regions the kernel would give them at the start (the
  mapped span cut at its two biggest gaps, evenly split, §9.2).
"""

from __future__ import annotations

from pathlib import Path

import attrs

from kdamon.backend.types import TargetAdded, WantedPids
from kdamon.errors import EngineError, KernelError
from kdamon.events.forks import process_start
from kdamon.model import Context, Kdamond, Region, Target

__all__ = ["GrowingTargets", "joining_target", "kernel_thread_pid"]

_PF_KTHREAD = 0x00200000  # task flags (/proc/PID/stat field 9) of a kernel thread
_KTHREADD = 2


def kernel_thread_pid(proc_root: Path = Path("/proc")) -> int:
    """The pid of kthreadd, a kernel thread that always runs (in the initial pid namespace)."""
    try:
        fields = (proc_root / str(_KTHREADD) / "stat").read_text().rpartition(")")[2].split()
        if int(fields[6]) & _PF_KTHREAD:
            return _KTHREADD
    except (OSError, IndexError, ValueError):
        pass
    raise KernelError(
        f"pid {_KTHREADD} is not kthreadd here (a separate pid namespace?): kdamon cannot keep "
        "the index of a target whose process exited. Run kdamon in the initial pid namespace, "
        "where DAMON also resolves the pids of a commit"
    )


def joining_target(context: Context, pid: int) -> Target:
    """The target a process joining ``context`` gets: fvaddr monitors the regions given for
    the first target (a child forked from it has the same address space layout)."""
    if context.ops == "fvaddr" and context.targets:
        return Target(pid=pid, regions=context.targets[0].regions)
    return Target(pid=pid)


def _initial_regions(context: Context, pid: int, proc_root: Path) -> tuple[Region, ...]:
    """What the kernel's ``damon_va_init()`` would give process ``pid`` (none if unreadable)."""
    from kdamon.engine.ops.procfs import read_maps
    from kdamon.engine.regions import PAGE_SIZE, evenly_split, three_regions

    try:
        ranges = three_regions(read_maps(pid, proc_root))
    except (EngineError, OSError):  # exited meanwhile: the next operations update finds nothing either
        return ()
    if ranges is None:
        return ()
    return tuple(Region(start, end) for start, end in evenly_split(ranges, context.nr_regions.min, PAGE_SIZE))


class GrowingTargets:
    """The target list of a running kernel kdamond that takes the processes ``wanted`` names.

    :meth:`grown` is the configuration to commit (or start again with) when
    wanted processes are not targets yet; :meth:`committed` says it was
    taken and announces the new targets.
    """

    def __init__(self, kdamond: Kdamond, wanted: WantedPids, *, proc_root: Path = Path("/proc")) -> None:
        self.kdamond = kdamond
        self.context = kdamond.contexts[0]
        self._wanted = wanted
        self._proc_root = proc_root
        self._targets = [t for t in self.context.targets if t.pid is not None]
        self._starts = {pid: process_start(pid, proc_root) for pid in self.pids}
        self._asked = set(self._starts)
        self._pending: list[int] = []
        self._offered: list[int] = []
        self._placeholder: int | None = None

    @property
    def pids(self) -> list[int]:
        """Every target's process, in target order."""
        return [t.pid for t in self._targets if t.pid is not None]

    def _running(self, pid: int) -> bool:
        """Whether the process first seen as ``pid`` still runs (not a zombie, not a reused pid)."""
        start = process_start(pid, self._proc_root)
        return start is not None and start == self._starts.get(pid, start)

    def _stand_in(self, pid: int | None) -> int:
        if pid is not None and self._running(pid):
            return pid
        if self._placeholder is None:
            self._placeholder = kernel_thread_pid(self._proc_root)
        return self._placeholder

    def grown(self) -> Kdamond | None:
        """The kdamond with the wanted processes appended; None if none is new and running.

        The targets it has keep their order, without regions: the kernel keeps theirs.
        """
        self._take_wanted()
        return self._build(restart=False) if self._pending else None

    def restarted(self) -> Kdamond:
        """The kdamond to start again after it ended: the targets it had, with their configured
        regions, and the wanted processes appended."""
        self._take_wanted()
        return self._build(restart=True)

    def _take_wanted(self) -> None:
        fresh = [pid for pid in dict.fromkeys(self._wanted()) if pid not in self._asked]
        self._asked.update(fresh)
        self._pending = [pid for pid in self._pending + fresh if process_start(pid, self._proc_root) is not None]

    def _build(self, *, restart: bool) -> Kdamond:
        self._offered = list(self._pending)
        for pid in self._offered:
            self._starts.setdefault(pid, process_start(pid, self._proc_root))
        targets = [
            attrs.evolve(t, pid=self._stand_in(t.pid), regions=t.regions if restart else ()) for t in self._targets
        ]
        for pid in self._offered:
            joining = joining_target(self.context, pid)
            targets.append(
                attrs.evolve(joining, regions=joining.regions or _initial_regions(self.context, pid, self._proc_root))
            )
        return attrs.evolve(
            self.kdamond, contexts=(attrs.evolve(self.context, targets=tuple(targets)), *self.kdamond.contexts[1:])
        )

    def committed(self) -> list[TargetAdded]:
        """The kdamond took the last :meth:`grown`: the targets it appended."""
        added = [TargetAdded(len(self._targets) + i, pid) for i, pid in enumerate(self._offered)]
        self._targets += [joining_target(self.context, pid) for pid in self._offered]
        self._pending = [pid for pid in self._pending if pid not in self._offered]
        self._offered = []
        return added
