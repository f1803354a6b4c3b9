"""Kernel against engine: what each reports per area of the same workload, within sampling tolerances.

Both monitor the same areas with the same intervals and region bounds; the
kernel samples the real workload, kdamon's engine (which follows core.c) a
simulated copy of it.  Per area each run gives the share of aggregations in
which the area was hot (mean ``nr_accesses`` at least half the maximum), how
fast the area's mean age grows per aggregation (1 for an area whose rate
never changes, less where ages reset), and, per run, the region count.

Tolerances come from the number of aggregations compared (``n``): two
shares differ by at most three standard errors of their difference,
``3 * sqrt(2 p (1 - p) / n)`` with ``p`` their mean, plus ``2 / n`` for the
start-up transient; the age growth rates by ``AGE_RATE_TOLERANCE`` (random
split points make a region's mean age lag by up to a couple of aggregations
over the run, ``2 / n`` per aggregation, floored at 0.15); the median region
counts by three standard errors of their difference plus 2 (the random
splits' spread).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

import attrs

from kdamon.check.invariants import area_mean_accesses, area_mean_age
from kdamon.model import Snapshot

__all__ = ["AreaProfile", "RunProfile", "differences", "profile"]


@attrs.frozen
class AreaProfile:
    hot_share: float  # of the aggregations compared
    age_rate: float  # mean age growth per aggregation


@attrs.frozen
class RunProfile:
    areas: tuple[AreaProfile, ...]
    counts: tuple[int, ...]  # regions per aggregation compared
    n: int  # aggregations compared

    def describe(self) -> str:
        areas = ", ".join(f"area {i}: hot {a.hot_share:.0%}, age +{a.age_rate:.2f}/aggr" for i, a in enumerate(self.areas))
        return f"{areas}; median {statistics.median(self.counts):g} regions"


def profile(snapshots: Sequence[Snapshot], areas: Sequence[tuple[int, int]], top: int) -> RunProfile:
    """The profile of the settled second half of a run (at least two snapshots)."""
    late = list(snapshots[len(snapshots) // 2:])
    if len(late) < 2:
        raise ValueError(f"{len(snapshots)} snapshots: a profile needs at least four")
    out = []
    for start, end in areas:
        hot = sum(1 for s in late if area_mean_accesses(s.regions, start, end) >= top / 2)
        ages = [area_mean_age(s, start, end) or 0.0 for s in late]
        out.append(AreaProfile(hot / len(late), (ages[-1] - ages[0]) / (len(late) - 1)))
    return RunProfile(tuple(out), tuple(len(s.regions) for s in late), len(late))


def _share_tolerance(a: float, b: float, n: int) -> float:
    p = (a + b) / 2
    return 3 * math.sqrt(2 * p * (1 - p) / n) + 2 / n


def _age_tolerance(n: int) -> float:
    return max(0.15, 2 / n)


def _count_tolerance(a: Sequence[int], b: Sequence[int]) -> float:
    spread = statistics.pvariance(a) / len(a) + statistics.pvariance(b) / len(b)
    return 3 * math.sqrt(spread) + 2


def differences(kernel: RunProfile, engine: RunProfile) -> list[str]:
    """Where the kernel's profile is outside the tolerance of the engine's, as sentences."""
    n = min(kernel.n, engine.n)
    found = []
    for i, (k, e) in enumerate(zip(kernel.areas, engine.areas, strict=True)):
        tol = _share_tolerance(k.hot_share, e.hot_share, n)
        if abs(k.hot_share - e.hot_share) > tol:
            found.append(f"area {i} was hot in {k.hot_share:.0%} of the kernel's aggregations and "
                         f"{e.hot_share:.0%} of the engine's (tolerance {tol:.0%} for {n} aggregations)")
        tol = _age_tolerance(n)
        if abs(k.age_rate - e.age_rate) > tol:
            found.append(f"area {i}'s mean age grew {k.age_rate:.2f} per aggregation in the kernel and "
                         f"{e.age_rate:.2f} in the engine (tolerance {tol:.2f})")
    km, em = statistics.median(kernel.counts), statistics.median(engine.counts)
    tol = _count_tolerance(kernel.counts, engine.counts)
    if abs(km - em) > tol:
        found.append(f"the kernel kept a median {km:g} regions and the engine {em:g} (tolerance {tol:.1f})")
    return found
