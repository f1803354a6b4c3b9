"""Kernel against engine: what each reports per area of the same workload, within sampling tolerances.

Both monitor the same areas with the same intervals and region bounds; the
kernel samples the real workload, kdamon's engine (which follows core.c) a
simulated copy of it.  Per area each run gives the share of aggregations in
which the area was accessed (mean ``nr_accesses`` above a tenth of the
maximum, the merge threshold), how
fast the area's mean age grows per aggregation (1 for an area whose rate
never changes, less where ages reset), and, per run, the region count.

Aggregations 0 and 1 (start-up) are left out; the region counts are
compared over the second half (settled).  Tolerances come from the number
of aggregations compared (``n``): the kernel's share may differ from the
engine's ``p`` by three binomial standard errors, ``3 * sqrt(p (1 - p) / n)``,
plus ``2 / n`` for a change that falls inside an aggregation.  Age growth is compared on idle areas only (under one
access per aggregation in both runs): a written area's sampled rate jitters
with the host's load under emulation (the workload shares the CPU), which
resets ages in the kernel and not in the engine, whose rates are exact.
Merges of regions with different ages make a mean age lag by up to a couple
of aggregations over the run: ``2 / n`` per aggregation, at least 0.15.
The median region counts may differ by 25% (at least 3 regions): over 20
seeds the engine's own median spans 12-14 on the hot/cold layout, the
kernel's random splits add as much, and 7.x splits partly above max/2 and
splits regions above the merge limit (``damon-abi.md`` 9.11-9.12).
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
    hot_share: float  # of the aggregations compared: the area's mean nr_accesses above top / 10
    mean_accesses: float  # per aggregation, size-weighted over the area
    age_rate: float  # mean age growth per aggregation


@attrs.frozen
class RunProfile:
    areas: tuple[AreaProfile, ...]
    counts: tuple[int, ...]  # regions per aggregation compared
    n: int  # aggregations compared

    def describe(self) -> str:
        areas = ", ".join(
            f"area {i}: accessed {a.hot_share:.0%}, {a.mean_accesses:.1f} accesses, age +{a.age_rate:.2f}/aggr"
            for i, a in enumerate(self.areas)
        )
        return f"{areas}; median {statistics.median(self.counts):g} regions"


def profile(snapshots: Sequence[Snapshot], areas: Sequence[tuple[int, int]], top: int) -> RunProfile:
    """The profile of a run from its third aggregation on (at least six snapshots)."""
    steady = list(snapshots[2:])
    if len(steady) < 4:
        raise ValueError(f"{len(snapshots)} snapshots: a profile needs at least six")
    out = []
    for start, end in areas:
        means = [area_mean_accesses(s.regions, start, end) for s in steady]
        ages = [area_mean_age(s, start, end) or 0.0 for s in steady]
        hot = sum(1 for m in means if m > top / 10) / len(steady)
        out.append(AreaProfile(hot, statistics.mean(means), (ages[-1] - ages[0]) / (len(steady) - 1)))
    late = snapshots[len(snapshots) // 2 :]
    return RunProfile(tuple(out), tuple(s.nr_regions for s in late), len(steady))


def _share_tolerance(p: float, n: int) -> float:
    return 3 * math.sqrt(p * (1 - p) / n) + 2 / n


def _age_tolerance(n: int) -> float:
    return max(0.15, 2 / n)


def _count_tolerance(engine_median: float) -> float:
    return max(3.0, 0.25 * engine_median)


def differences(kernel: RunProfile, engine: RunProfile) -> list[str]:
    """Where the kernel's profile is outside the tolerance of the engine's, as sentences."""
    n = min(kernel.n, engine.n)
    found = []
    for i, (k, e) in enumerate(zip(kernel.areas, engine.areas, strict=True)):
        tol = _share_tolerance(e.hot_share, n)
        if abs(k.hot_share - e.hot_share) > tol:
            found.append(
                f"area {i} was accessed in {k.hot_share:.0%} of the kernel's aggregations and "
                f"{e.hot_share:.0%} of the engine's (tolerance {tol:.0%} for {n} aggregations)"
            )
        tol = _age_tolerance(n)
        if max(k.mean_accesses, e.mean_accesses) < 1 and abs(k.age_rate - e.age_rate) > tol:
            found.append(
                f"area {i}'s mean age grew {k.age_rate:.2f} per aggregation in the kernel and "
                f"{e.age_rate:.2f} in the engine (tolerance {tol:.2f})"
            )
    km, em = statistics.median(kernel.counts), statistics.median(engine.counts)
    tol = _count_tolerance(em)
    if abs(km - em) > tol:
        found.append(f"the kernel kept a median {km:g} regions and the engine {em:g} (tolerance {tol:.1f})")
    return found
