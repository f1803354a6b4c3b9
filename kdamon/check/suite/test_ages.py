"""Region ages: +1 per aggregation at a steady rate, reset on a change, reaching an area's idle time.

One observation serves the group: a two-area stairs workload (one area
written for a step, then the other, and so on) whose span is monitored with
fixed regions.  Each area is in turn idle for exactly one step, so its age
must climb by one per aggregation, drop to 0 when the area is written again,
and, at the end of the idle step, amount to the step's duration.  An area
counts as idle when regions without access cover most of it (a region of
the written neighbour may reach over its edge for a while) and is judged on
the size-weighted mean age of those regions.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterator

import attrs
import pytest

from kdamon.check.emit import NOTE
from kdamon.check.harness import Observation, calibrate, observe
from kdamon.check.invariants import area_mean_accesses, area_mean_age, idle_share
from kdamon.kernel.sysfs import SysfsDriver
from kdamon.model import Context, Kdamond, NrRegions, Region, Target
from kdamon.testing.workloads import Layout, start

pytestmark = pytest.mark.usefixtures("trace_keepalive")  # see conftest.py
RecordProperty = Callable[[str, object], None]
STEP_S = 2.0
STEPS = 4.5
MIN_AGGREGATIONS_PER_STEP = 5
AREA = 4 << 20
IDLE_SHARE = 0.75  # an area is idle when regions without access cover this much of it (edges may lag)


@attrs.frozen
class Phases:
    """The observation, and per area and snapshot whether it was idle (0 accesses), hot, or between."""

    seen: Observation
    layout: Layout
    top: int
    idle: tuple[tuple[bool, ...], ...]  # [area][snapshot]: IDLE_SHARE of the area without access
    hot: tuple[tuple[bool, ...], ...]
    period_s: float  # median time between snapshots (trace clock)

    def age(self, area: int, snapshot: int) -> float:
        """The mean age of the area's idle regions (of all its regions when none is idle)."""
        snap, bounds = self.seen.snapshots[snapshot], self.layout.areas[area]
        got = area_mean_age(snap, *bounds, idle_only=True)
        if got is None:
            got = area_mean_age(snap, *bounds)
        return got if got is not None else 0.0

    def idle_runs(self, area: int) -> list[tuple[int, int]]:
        """``[first, last]`` snapshot of each run of idle snapshots of ``area`` with hot ones close on both sides.

        Hot within two snapshots on each side makes sure the run spans a
        whole idle step (the snapshot of the change may be partly written).
        """
        out = []
        flags = self.idle[area]
        i = 0
        while i < len(flags):
            if not flags[i]:
                i += 1
                continue
            j = i
            while j + 1 < len(flags) and flags[j + 1]:
                j += 1
            if any(self.hot[area][max(i - 2, 0) : i]) and any(self.hot[area][j + 1 : j + 3]):
                out.append((i, j))
            i = j + 1
        return out


@pytest.fixture(scope="module")
def phases(raw_driver: SysfsDriver) -> Iterator[Phases]:
    with start("stairs", sizes=(AREA, AREA), step_s=STEP_S) as workload:
        layout = workload.layout
        intervals = calibrate(layout).intervals
        context = Context(
            intervals=intervals,
            nr_regions=NrRegions(min=10, max=100),
            targets=(Target(pid=layout.pid, regions=(Region(*layout.span),)),),
        )
        seen = observe(raw_driver, Kdamond(contexts=(context,)), aggregations=1, seconds=STEPS * STEP_S)
    top = intervals.aggr_us // intervals.sample_us
    means = [[area_mean_accesses(s.regions, *area) for s in seen.snapshots] for area in layout.areas]
    gaps = [(b.time_ns - a.time_ns) / 1e9 for a, b in zip(seen.snapshots, seen.snapshots[1:], strict=False)]
    period = statistics.median(gaps) if gaps else 0.0
    if period <= 0 or STEP_S / period < MIN_AGGREGATIONS_PER_STEP:
        pytest.skip(
            f"{seen.rate_note(intervals.aggr_us)}: fewer than {MIN_AGGREGATIONS_PER_STEP} aggregations per "
            f"{STEP_S:g} s step, too few to follow ages here"
        )
    idle = [[idle_share(s, *area) >= IDLE_SHARE for s in seen.snapshots] for area in layout.areas]
    yield Phases(
        seen,
        layout,
        top,
        tuple(tuple(area) for area in idle),
        tuple(tuple(m >= top / 2 for m in area) for area in means),
        period,
    )


def _steady_increments(p: Phases) -> list[float]:
    """Mean-age increments between consecutive idle snapshots of an area, once its reset is two snapshots behind."""
    found = []
    for area in range(len(p.layout.areas)):
        for first, last in p.idle_runs(area):
            for i in range(first + 1, last):
                found.append(p.age(area, i + 1) - p.age(area, i))
    return found


def test_steady_rate_ages_by_one(phases: Phases, record_property: RecordProperty) -> None:
    """a region whose access rate stays the same (an idle area) ages by one per aggregation"""
    steps = _steady_increments(phases)
    assert len(steps) >= 4, f"only {len(steps)} steady aggregations of an idle area were traced"
    good = [s for s in steps if 0.5 <= s <= 1.5]
    median = statistics.median(steps)
    record_property(
        NOTE,
        f"{len(steps)} steady aggregations: median mean-age increment {median:.2f}, "
        f"{len(good)} within 0.5-1.5; {phases.seen.lost_events} trace events lost",
    )
    assert 0.9 <= median <= 1.1, f"the idle area's mean age grows by {median:.2f} per aggregation (want 1)"
    assert len(good) >= 0.8 * len(steps), f"increments {[round(s, 2) for s in steps]}: want 1 each"


def test_change_resets_age(phases: Phases, record_property: RecordProperty) -> None:
    """a change of access rate beyond the merge threshold resets the age to 0"""
    became_idle, became_hot = [], []
    for area in range(len(phases.layout.areas)):
        for first, last in phases.idle_runs(area):
            if last - first >= 2:
                became_idle.append((phases.age(area, first - 1), phases.age(area, first)))
                hot = next(i for i in range(last + 1, last + 3) if phases.hot[area][i])
                became_hot.append((phases.age(area, last), phases.age(area, hot)))
    record_property(
        NOTE,
        "ages (before, after) when an area went idle: "
        f"{[(round(a), round(b, 1)) for a, b in became_idle]}; when it went hot: "
        f"{[(round(a), round(b, 1)) for a, b in became_hot]}",
    )
    assert became_hot, "no area went from idle to hot during the observation"
    wrong = [(a, b) for a, b in [*became_idle, *became_hot] if b > 1.0]
    assert not wrong, f"mean ages {wrong} (before, after a change): after the change the age should be 0 or 1"
    assert max(a for a, _ in became_hot) >= 2, "the idle areas never aged before becoming hot"


def _age_seconds(p: Phases, area: int, last: int) -> float:
    """The trace time the area's age at snapshot ``last`` spans: back to the snapshot that many aggregations earlier."""
    back = last - round(p.age(area, last))
    if back < 0:  # older than the observation: at least as long as all of it
        back = 0
    return (p.seen.snapshots[last].time_ns - p.seen.snapshots[back].time_ns) / 1e9


def test_idle_age_reaches_idle_time(phases: Phases, record_property: RecordProperty) -> None:
    """an idle area's age grows until it amounts to the time it has been idle"""
    tolerance = 2 * phases.period_s + 0.3 * STEP_S
    ages = [
        _age_seconds(phases, area, last)
        for area in range(len(phases.layout.areas))
        for _first, last in phases.idle_runs(area)
    ]
    record_property(
        NOTE,
        f"after {STEP_S:g} s idle the age spanned {[round(a, 2) for a in ages]} s of trace time "
        f"(tolerance {tolerance:.2f} s: two aggregations of {phases.period_s * 1000:.0f} ms, as the "
        "change falls inside one and the next may reset again, and 30% for TCG's irregular timing "
        "and edge regions that go idle late)",
    )
    assert ages, "no complete idle step was traced"
    wrong = [a for a in ages if abs(a - STEP_S) > tolerance]
    assert not wrong, f"ages worth {wrong} s after {STEP_S:g} s idle (tolerance {tolerance:.2f} s)"
