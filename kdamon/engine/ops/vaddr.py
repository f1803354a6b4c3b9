"""Monitoring processes from user space (``mm/damon/vaddr.c``, 6.12).

Regions follow the kernel: a target without user-given regions starts with
its mapped span cut at the two biggest gaps (§9.2), evenly split into about
``min_nr_regions`` pieces; every ``update_us`` the three ranges are
recomputed and applied with ``damon_set_regions()``.  With ``fixed=True``
(``fvaddr``) only the user's regions are monitored, never updated.

What an access check sees depends on the :mod:`~kdamon.engine.ops.checks`
kind of each target (see :attr:`VaddrOps.capabilities`).  DAMOS actions go
through ``process_madvise()`` (``cold``, ``pageout``, ``willneed``,
``collapse``); other actions apply nothing, as ``hugepage`` and
``nohugepage`` cannot be given to another process.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from kdamon.engine.context import MonitorContext, TargetState
from kdamon.engine.ops.base import ScoreKind
from kdamon.engine.ops.checks import CHECK_DESCRIPTIONS, AccessCheck, CheckKind, open_check
from kdamon.engine.ops.madvise import ProcessAdvisor
from kdamon.engine.ops.procfs import process_alive, read_maps
from kdamon.engine.regions import evenly_split, three_regions
from kdamon.errors import EngineError
from kdamon.model.config import Scheme

__all__ = ["VaddrOps"]


class VaddrOps:
    """Virtual address space operations on live processes."""

    def __init__(self, kinds: Sequence[CheckKind], *, fixed: bool = False,
                 proc_root: Path = Path("/proc"), sys_root: Path = Path("/sys")) -> None:
        """``kinds[i]`` is the access check of target ``i``."""
        self.kinds = tuple(kinds)
        self.fixed = fixed
        self.proc_root = proc_root
        self.sys_root = sys_root
        distinct = sorted(set(self.kinds))
        self.name = ("fvaddr/" if fixed else "vaddr/") + "+".join(distinct)
        self.capabilities = "; ".join(CHECK_DESCRIPTIONS[kind] for kind in distinct)
        self._checks: dict[int, AccessCheck] = {}
        self._advisors: dict[int, ProcessAdvisor] = {}

    def _pid(self, target: TargetState) -> int:
        if target.pid is None:
            raise EngineError(f"target {target.index} has no pid: vaddr monitors processes")
        return target.pid

    def _three_ranges(self, pid: int) -> list[tuple[int, int]] | None:
        return three_regions(read_maps(pid, self.proc_root))

    # -- the seven primitives --------------------------------------------------

    def init(self, ctx: MonitorContext) -> None:
        if len(self.kinds) != len(ctx.targets):
            raise EngineError(f"VaddrOps was given {len(self.kinds)} access check kinds for "
                              f"{len(ctx.targets)} targets: give one per target")
        for target in ctx.targets:
            pid = self._pid(target)
            self._checks[target.index] = open_check(self.kinds[target.index], pid,
                                                    self.proc_root, self.sys_root)
            self._advisors[target.index] = ProcessAdvisor(pid)
            if self.fixed or len(target.regions):
                continue
            ranges = self._three_ranges(pid)
            if ranges is not None:
                target.regions.set_ranges(
                    evenly_split(ranges, ctx.config.nr_regions.min, ctx.min_region),
                    ctx.min_region)

    def update(self, ctx: MonitorContext) -> None:
        if self.fixed:
            return
        for target in ctx.targets:
            pid = self._pid(target)
            if not process_alive(pid, self.proc_root):
                continue
            try:
                ranges = self._three_ranges(pid)
            except (EngineError, OSError):  # a process exiting meanwhile fails its reads (ESRCH)
                continue  # exited meanwhile
            if ranges is not None:
                target.regions.set_ranges(ranges, ctx.min_region)

    def prepare_access_checks(self, ctx: MonitorContext) -> None:
        for target in ctx.targets:
            addrs = target.regions.pick_sampling_addrs(ctx.rng)
            check = self._checks.get(target.index)
            if check is None or not len(target.regions):
                continue
            try:
                check.prepare(addrs)
            except (EngineError, OSError):  # a process exiting meanwhile fails its reads (ESRCH)
                if not self._exited(target):
                    raise

    def check_accesses(self, ctx: MonitorContext) -> int:
        max_nr_accesses = 0
        for target in ctx.targets:
            regions = target.regions
            check = self._checks.get(target.index)
            if check is None or not len(regions):
                continue
            try:
                seen = check.check(regions.sampling_addr)
            except (EngineError, OSError):  # a process exiting meanwhile fails its reads (ESRCH)
                if not self._exited(target):
                    raise
                continue
            regions.record_accesses(seen, ctx.max_nr_accesses)
            max_nr_accesses = max(max_nr_accesses, regions.max_nr_accesses())
        return max_nr_accesses

    def reset_aggregated(self, ctx: MonitorContext) -> None:
        """Nothing to do at aggregation boundaries (as in the kernel)."""

    def target_valid(self, target: TargetState) -> bool:
        return target.pid is not None and process_alive(target.pid, self.proc_root)

    def cleanup(self, ctx: MonitorContext) -> None:
        for check in self._checks.values():
            check.close()
        for advisor in self._advisors.values():
            advisor.close()
        self._checks.clear()
        self._advisors.clear()

    # -- DAMOS -----------------------------------------------------------------

    def apply_scheme(self, ctx: MonitorContext, target: TargetState, start: int, end: int,
                     scheme: Scheme) -> int:
        advisor = self._advisors.get(target.index)
        return advisor.advise(start, end, scheme.action) if advisor is not None else 0

    def score_kind(self, action: str) -> ScoreKind:
        return "cold" if action == "pageout" else "max"

    # -- helpers ---------------------------------------------------------------

    def _exited(self, target: TargetState) -> bool:
        """A process that exited meanwhile just gives no result (its errors are expected)."""
        return target.pid is not None and not process_alive(target.pid, self.proc_root)
