"""Monitoring processes from user space (``mm/damon/vaddr.c``, 6.12).

Regions follow the kernel: a target without user-given regions starts with
its mapped span cut at the two biggest gaps (§9.2), evenly split into about
``min_nr_regions`` pieces; every ``update_us`` the three ranges are
recomputed and applied with ``damon_set_regions()``.  With ``fixed=True``
(``fvaddr``) only the user's regions are monitored, never updated.

What an access check sees depends on the :mod:`~kdamon.engine.ops.checks`
kind of each target, :attr:`VaddrOps.kinds` (see also
:attr:`VaddrOps.capabilities`).  A target may await better kinds that its
process does not allow yet, such as ``uffd`` before the process registers
its memory (a command just started has not).  Each update asks the process
again, one cheap test per awaited kind (a single ``PAGEMAP_SCAN`` for
``uffd``; registering memory does not show in ``/proc/PID/maps``, so a
change there cannot be the trigger), and switches to the best kind it
allows; a target on the best kind it can get is not asked again.  If a
check switched to fails while its process lives, the target goes back to
the kind it replaced and no longer awaits the failed one.  Each update also
asks the check in use whether it still observes its process
(:meth:`AccessCheck.lost <kdamon.engine.ops.checks.AccessCheck.lost>`): a
process that exec'd has a new address space, which a check bound to the old
pagemap no longer sees, and a ``uffd`` target may unregister its memory;
the process is then probed afresh (:func:`~kdamon.engine.ops.probe.probe`),
as at the start.  Without this every sample would read as "not accessed"
and a ``cold`` or ``pageout`` scheme would act on hot memory.

A process can also be added while the monitor runs
(:meth:`VaddrOps.add_target`, e.g. a child the target forked): it is
probed and gets its initial regions as the targets at the start do.

DAMOS actions go through ``process_madvise()`` (``cold``, ``pageout``,
``willneed``, ``collapse``, :attr:`VaddrOps.applied_actions`); no other
advice can be given to another process, so the monitor refuses schemes with
other actions (``hugepage``, ``lru_prio``, ``migrate_hot``, ...).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

from kdamon.engine.context import MonitorContext, TargetState
from kdamon.engine.ops import common
from kdamon.engine.ops.base import ScoreKind
from kdamon.engine.ops.checks import (
    CHECK_DESCRIPTIONS,
    CHECK_KINDS,
    AccessCheck,
    CheckKind,
    open_check,
    process_problem,
)
from kdamon.engine.ops.common import Addresses, Seen
from kdamon.engine.ops.madvise import ADVICE, ProcessAdvisor
from kdamon.engine.ops.probe import probe
from kdamon.engine.ops.procfs import process_alive, read_maps
from kdamon.engine.regions import three_regions
from kdamon.errors import EngineError, EngineWarning
from kdamon.model.config import Scheme

__all__ = ["VIRTUAL_SCORES", "VaddrOps"]

VIRTUAL_SCORES: Mapping[str, ScoreKind] = {"pageout": "cold"}
"""``damon_va_scheme_score()``: regions to page out go coldest first, the other actions' in address order."""


class VaddrOps:
    """Virtual address space operations on live processes."""

    applied_actions: tuple[str, ...] = tuple(ADVICE)

    def __init__(
        self,
        kinds: Sequence[CheckKind],
        *,
        awaited: Sequence[Sequence[CheckKind]] = (),
        fixed: bool = False,
        proc_root: Path = Path("/proc"),
        sys_root: Path = Path("/sys"),
    ) -> None:
        """``kinds[i]`` is the access check target ``i`` starts with; ``awaited[i]``
        (none if not given) the better kinds it switches to once its process
        allows them, as :attr:`ProbeResult.awaited
        <kdamon.engine.ops.probe.ProbeResult.awaited>` lists them."""
        if awaited and len(awaited) != len(kinds):
            raise EngineError(
                f"VaddrOps was given {len(awaited)} awaited kind lists for {len(kinds)} targets: give one per target"
            )
        self.kinds = tuple(kinds)
        """The access check kind each target uses now."""
        self.fixed = fixed
        self.proc_root = proc_root
        self.sys_root = sys_root
        self._awaited = [
            _better(kind, wanted) for kind, wanted in zip(self.kinds, awaited or [()] * len(self.kinds), strict=True)
        ]
        self._replaced: list[list[CheckKind]] = [[] for _ in self.kinds]
        """Per target, the kinds its switches replaced, the latest last."""
        self._checks: dict[int, AccessCheck] = {}
        self._advisors: dict[int, ProcessAdvisor] = {}
        self._coarse_told: set[int] = set()
        """The processes already told they are watched per mapping (smaps)."""
        self._describe()

    def _describe(self) -> None:
        distinct = sorted(set(self.kinds))
        self.name = ("fvaddr/" if self.fixed else "vaddr/") + "+".join(distinct)
        self.capabilities = "; ".join(CHECK_DESCRIPTIONS[kind] for kind in distinct)

    def _tell_if_coarse(self, pid: int, kind: CheckKind) -> None:
        """Warn, once a process, that smaps sees mappings, not pages: a user of ``show`` would
        otherwise take a mapping-wide heat for the truth about each of its regions."""
        if kind != "smaps" or pid in self._coarse_told:
            return
        self._coarse_told.add(pid)
        warnings.warn(
            EngineWarning(
                f"process {pid} is watched through smaps, which sees mappings, not pages: a region counts "
                "as accessed when any page of its mapping was, so a mapping with a small hot part looks hot "
                "all over. For a per-page view, run as root on a kernel with CONFIG_IDLE_PAGE_TRACKING "
                "(page_idle), or let the process register its memory for userfaultfd (uffd)"
            ),
            stacklevel=2,
        )

    def _pid(self, target: TargetState) -> int:
        if target.pid is None:
            raise EngineError(f"target {target.index} has no pid: vaddr monitors processes")
        return target.pid

    def _three_ranges(self, pid: int) -> list[tuple[int, int]] | None:
        return three_regions(read_maps(pid, self.proc_root))

    # -- the seven primitives --------------------------------------------------

    def init(self, ctx: MonitorContext) -> None:
        if len(self.kinds) != len(ctx.targets):
            raise EngineError(
                f"VaddrOps was given {len(self.kinds)} access check kinds for "
                f"{len(ctx.targets)} targets: give one per target"
            )
        for target in ctx.targets:
            self._open(ctx, target, self.kinds[target.index])

    def _open(self, ctx: MonitorContext, target: TargetState, kind: CheckKind) -> None:
        """The check and the advisor of a target, and its initial regions if it has none."""
        pid = self._pid(target)
        self._checks[target.index] = open_check(kind, pid, self.proc_root, self.sys_root)
        self._advisors[target.index] = ProcessAdvisor(pid)
        self._tell_if_coarse(pid, kind)
        if self.fixed or len(target.regions):
            return
        ranges = self._three_ranges(pid)
        if ranges is not None:
            common.set_initial_regions(ctx, target, ranges)

    def add_target(self, ctx: MonitorContext, target: TargetState) -> None:
        """A process to monitor from now on: the best check it allows, its initial regions."""
        if target.index != len(self.kinds):
            raise EngineError(
                f"target {target.index} cannot be added to the {len(self.kinds)} targets "
                "the vaddr operations have: targets are appended in index order"
            )
        pid = self._pid(target)
        result = probe(pid, self.proc_root, self.sys_root)
        try:
            self._open(ctx, target, result.kind)
        except (EngineError, OSError) as error:  # e.g. the process exited meanwhile
            for held in (self._checks.pop(target.index, None), self._advisors.pop(target.index, None)):
                if held is not None:
                    held.close()
            raise EngineError(f"process {pid} cannot be monitored: {error}") from error
        self.kinds += (result.kind,)
        self._awaited.append(_better(result.kind, result.awaited))
        self._replaced.append([])
        self._describe()

    def update(self, ctx: MonitorContext) -> None:
        for target in ctx.targets:
            pid = self._pid(target)
            if not process_alive(pid, self.proc_root):
                continue
            if not self._probe_again_if_lost(target, pid) and self._awaited[target.index]:
                self._switch_to_awaited(target, pid)
            if self.fixed:
                continue
            try:
                ranges = self._three_ranges(pid)
            except (EngineError, OSError):  # a process exiting meanwhile fails its reads (ESRCH)
                continue  # exited meanwhile
            if ranges is not None:
                target.regions.set_ranges(ranges, ctx.min_region)

    def prepare_access_checks(self, ctx: MonitorContext) -> None:
        common.prepare_access_checks(ctx, self._prepare)

    def check_accesses(self, ctx: MonitorContext) -> int:
        return common.check_accesses(ctx, self._seen)

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

    def apply_scheme(self, ctx: MonitorContext, target: TargetState, start: int, end: int, scheme: Scheme) -> int:
        advisor = self._advisors.get(target.index)
        if advisor is None or scheme.action == "stat":
            return 0
        return advisor.advise(start, end, scheme.action)

    def score_kind(self, action: str) -> ScoreKind:
        return common.score_kind(VIRTUAL_SCORES, action)

    # -- helpers ---------------------------------------------------------------

    def _prepare(self, target: TargetState, addrs: Addresses) -> None:
        check = self._checks.get(target.index)
        if check is not None:
            try:
                check.prepare(addrs)
            except (EngineError, OSError) as error:
                self._survive(target, error)

    def _seen(self, target: TargetState, addrs: Addresses) -> Seen | None:
        check = self._checks.get(target.index)
        if check is None:
            return None
        try:
            return check.check(addrs)
        except (EngineError, OSError) as error:
            self._survive(target, error)
            return None

    def _survive(self, target: TargetState, error: EngineError | OSError) -> None:
        """After a check failed: nothing if the process exited meanwhile (its reads fail with
        ESRCH), back to the check it replaced if it lives; raise ``error`` otherwise."""
        if not self._exited(target) and not self._fall_back(target):
            raise error

    def _exited(self, target: TargetState) -> bool:
        """A process that exited meanwhile just gives no result (its errors are expected)."""
        return target.pid is not None and not process_alive(target.pid, self.proc_root)

    def _use(self, target: TargetState, kind: CheckKind, check: AccessCheck) -> None:
        self._checks.pop(target.index).close()
        self._checks[target.index] = check
        kinds = list(self.kinds)
        kinds[target.index] = kind
        self.kinds = tuple(kinds)
        self._describe()
        self._tell_if_coarse(self._pid(target), kind)

    def _switch_to_awaited(self, target: TargetState, pid: int) -> None:
        """Switch to the best awaited kind the process allows now, if any."""
        awaited = self._awaited[target.index]
        for position, kind in enumerate(awaited):
            if process_problem(kind, pid, self.proc_root) is not None:
                continue
            try:
                check = open_check(kind, pid, self.proc_root, self.sys_root)
            except (EngineError, OSError):  # e.g. exiting meanwhile: asked again next update
                continue
            self._replaced[target.index].append(self.kinds[target.index])
            self._awaited[target.index] = awaited[:position]
            self._use(target, kind, check)
            return

    def _probe_again_if_lost(self, target: TargetState, pid: int) -> bool:
        """Choose the check afresh when the one in use no longer observes the process.

        True when it was chosen afresh (the awaited kinds were just asked).
        """
        check = self._checks.get(target.index)
        if check is None or check.lost() is None:
            return False
        try:
            result = probe(pid, self.proc_root, self.sys_root)
            new = open_check(result.kind, pid, self.proc_root, self.sys_root)
        except (EngineError, OSError):  # e.g. exiting meanwhile: asked again next update
            return False
        self._awaited[target.index] = result.awaited
        self._replaced[target.index] = []
        self._use(target, result.kind, new)
        new.prepare(target.regions.sampling_addr)
        return True

    def _fall_back(self, target: TargetState) -> bool:
        """Replace the failed check of a live process by the one it replaced.

        The new check starts observing the current sampling addresses; the
        failed kind is not awaited any more.  False if no switch preceded.
        """
        replaced = self._replaced[target.index]
        if not replaced:
            return False
        kind = replaced.pop()
        check = open_check(kind, self._pid(target), self.proc_root, self.sys_root)
        self._use(target, kind, check)
        check.prepare(target.regions.sampling_addr)
        return True


def _better(kind: CheckKind, wanted: Sequence[CheckKind]) -> tuple[CheckKind, ...]:
    """The kinds of ``wanted`` better than ``kind``, best first."""
    return tuple(k for k in CHECK_KINDS[: CHECK_KINDS.index(kind)] if k in wanted)
