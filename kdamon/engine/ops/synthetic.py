"""A simulated address space per target, driven by a :class:`SyntheticPattern`.

The check asks the pattern's ground truth whether the page of each sampling
address was accessed between ``prepare_access_checks`` and
``check_accesses`` (clock time), so it runs the same on a virtual and a
real clock.  Targets are matched to patterns by index; their pids are not
used.  Regions start like 6.12 vaddr: the whole space evenly split into
``min_nr_regions`` pieces (user-given regions win), and never change with
``update``.

DAMOS actions are recorded in :attr:`SyntheticOps.applied`, never
performed; every action but ``stat`` counts as applied to the whole region.
Quota prioritisation follows paddr's table (cold score for ``pageout``,
``lru_deprio``, ``migrate_cold``; hot for ``lru_prio``, ``migrate_hot``).
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from kdamon.engine.context import MonitorContext, TargetState
from kdamon.engine.ops import common
from kdamon.engine.ops.base import ScoreKind
from kdamon.engine.ops.common import Addresses, Seen
from kdamon.engine.ops.patterns import SyntheticPattern
from kdamon.engine.regions import PAGE_SIZE
from kdamon.errors import EngineError
from kdamon.model.config import ACTIONS, Context, Scheme, Target

__all__ = ["AppliedAction", "SyntheticOps", "synthetic_context"]


@attrs.frozen
class AppliedAction:
    """A DAMOS action the synthetic address space was asked to perform."""

    time_ns: int
    target_idx: int
    start: int
    end: int
    action: str


def synthetic_context(nr_targets: int = 1, **fields: object) -> Context:
    """A vaddr :class:`Context` with ``nr_targets`` placeholder targets.

    The placeholders' pids (1, 2, ...) are never used by :class:`SyntheticOps`;
    other keyword arguments are :class:`Context` fields.
    """
    targets = tuple(Target(pid=index + 1) for index in range(nr_targets))
    return Context(targets=targets, **fields)  # type: ignore[arg-type]


class SyntheticOps:
    """Operations on simulated address spaces with known access patterns."""

    name = "synthetic"
    capabilities = (
        "simulated address space: sees reads and writes, per page, exactly as "
        "the pattern's ground truth says; no side effects; DAMOS actions are "
        "only recorded"
    )
    applied_actions: tuple[str, ...] = tuple(a for a in ACTIONS if a != "stat")

    def __init__(self, patterns: Sequence[SyntheticPattern], *, apply_ns_per_page: int = 0) -> None:
        """``apply_ns_per_page`` simulates the time a DAMOS action takes (clock time)."""
        self.patterns = tuple(patterns)
        self.apply_ns_per_page = apply_ns_per_page
        self.applied: list[AppliedAction] = []
        self._invalid: set[int] = set()
        self._window_start_us = 0

    def pattern_of(self, target: TargetState) -> SyntheticPattern:
        if target.index >= len(self.patterns):
            raise EngineError(
                f"target {target.index} has no synthetic pattern: give "
                f"SyntheticOps one pattern per target ({len(self.patterns)} given)"
            )
        return self.patterns[target.index]

    def end_target(self, index: int) -> None:
        """Make target ``index`` invalid, as if its process exited."""
        self._invalid.add(index)

    # -- the seven primitives --------------------------------------------------

    def init(self, ctx: MonitorContext) -> None:
        for target in ctx.targets:
            pattern = self.pattern_of(target)
            common.set_initial_regions(ctx, target, [(pattern.base, pattern.end)])

    def update(self, ctx: MonitorContext) -> None:
        """The simulated spaces never change."""

    def prepare_access_checks(self, ctx: MonitorContext) -> None:
        common.prepare_access_checks(ctx, lambda _target, _addrs: None)  # the pattern knows
        self._window_start_us = ctx.clock.now_ns() // 1000

    def check_accesses(self, ctx: MonitorContext) -> int:
        now_us = ctx.clock.now_ns() // 1000

        def seen(target: TargetState, addrs: Addresses) -> Seen:
            return self.pattern_of(target).accessed(addrs, self._window_start_us, now_us)

        return common.check_accesses(ctx, seen)

    def reset_aggregated(self, ctx: MonitorContext) -> None:
        """Nothing to do at aggregation boundaries."""

    def target_valid(self, target: TargetState) -> bool:
        return target.index < len(self.patterns) and target.index not in self._invalid

    def cleanup(self, ctx: MonitorContext) -> None:
        """Nothing to release."""

    # -- DAMOS -----------------------------------------------------------------

    def apply_scheme(self, ctx: MonitorContext, target: TargetState, start: int, end: int, scheme: Scheme) -> int:
        if scheme.action == "stat":
            return 0
        if self.apply_ns_per_page:
            ctx.clock.sleep_ns((end - start) // PAGE_SIZE * self.apply_ns_per_page)
        self.applied.append(AppliedAction(ctx.clock.now_ns(), target.index, start, end, scheme.action))
        return end - start

    def score_kind(self, action: str) -> ScoreKind:
        return common.score_kind(common.PHYSICAL_SCORES, action)
