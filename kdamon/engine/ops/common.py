"""What the operations sets share, as the kernel's ``mm/damon/ops-common.c``: the access check loop and scoring.

Every sampling interval the core asks an operations set to prepare, then to
check, the accesses of every target.  The loop over the targets is the same
for all of them: :func:`prepare_access_checks` picks one random sampling
address per region (``damon_rand()``) and lets the set clear the accessed
state there; :func:`check_accesses` lets the set read it back, records it
in the regions (``damon_update_region_access_rate()``) and returns the
highest ``nr_accesses`` for the core.  A set supplies only how it clears and
reads a target's pages.  :func:`set_initial_regions` is the initial split
of the spaces vaddr and synthetic know the extent of, and
:data:`PHYSICAL_SCORES` the quota priorities of ``damon_pa_scheme_score()``,
which the synthetic space follows too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from kdamon.engine.context import MonitorContext, TargetState
from kdamon.engine.ops.base import ScoreKind
from kdamon.engine.regions import Range, evenly_split

__all__ = [
    "PHYSICAL_SCORES",
    "Addresses",
    "Seen",
    "check_accesses",
    "prepare_access_checks",
    "score_kind",
    "set_initial_regions",
]

Addresses = npt.NDArray[np.int64]
Seen = npt.NDArray[np.bool_]

PHYSICAL_SCORES: Mapping[str, ScoreKind] = {
    "pageout": "cold",
    "lru_deprio": "cold",
    "migrate_cold": "cold",
    "lru_prio": "hot",
    "migrate_hot": "hot",
}
"""``damon_pa_scheme_score()``: the score prioritising each action's regions under a quota."""


def score_kind(scores: Mapping[str, ScoreKind], action: str) -> ScoreKind:
    """The score of ``action`` in a table such as :data:`PHYSICAL_SCORES`; an action it lacks gets the maximum."""
    return scores.get(action, "max")


def set_initial_regions(ctx: MonitorContext, target: TargetState, ranges: Sequence[Range]) -> None:
    """Unless the target has regions (the user's), ``ranges`` evenly split into about
    ``min_nr_regions`` pieces (6.12 ``__damon_va_init_regions()``)."""
    if not len(target.regions):
        target.regions.set_ranges(evenly_split(ranges, ctx.config.nr_regions.min, ctx.min_region), ctx.min_region)


def prepare_access_checks(ctx: MonitorContext, prepare: Callable[[TargetState, Addresses], None]) -> None:
    """A new sampling address in every region; ``prepare(target, addresses)`` for each target with regions."""
    for target in ctx.targets:
        addrs = target.regions.pick_sampling_addrs(ctx.rng)
        if len(target.regions):
            prepare(target, addrs)


def check_accesses(ctx: MonitorContext, seen: Callable[[TargetState, Addresses], Seen | None]) -> int:
    """Record in each target with regions whether ``seen(target, sampling addresses)`` says each
    was accessed (None: no result this time); the highest ``nr_accesses`` of the regions recorded."""
    max_nr_accesses = 0
    for target in ctx.targets:
        regions = target.regions
        if not len(regions):
            continue
        accessed = seen(target, regions.sampling_addr)
        if accessed is None:
            continue
        regions.record_accesses(accessed, ctx.max_nr_accesses)
        max_nr_accesses = max(max_nr_accesses, regions.max_nr_accesses())
    return max_nr_accesses
