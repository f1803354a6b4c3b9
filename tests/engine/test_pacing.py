"""Pacing on the clock: the engine's own work is deducted from its sleep, intervals it cannot
keep are widened (the ratio kept), and snapshots carry the intervals really used.

Deterministic: an operations set whose access check takes virtual time stands for a slow
check on a real machine.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from kdamon.engine.context import MonitorContext
from kdamon.engine.core import Callbacks, Monitor
from kdamon.engine.ops.patterns import SyntheticPattern
from kdamon.engine.ops.synthetic import SyntheticOps, synthetic_context
from kdamon.engine.pacing import round_up_us
from kdamon.engine.tuning import tune_intervals
from kdamon.errors import EngineWarning
from kdamon.model.config import Intervals, IntervalsGoal
from kdamon.model.snapshot import Snapshot

# the widening warning is looked for where it is expected, and left out elsewhere
pytestmark = pytest.mark.filterwarnings("ignore::kdamon.errors.EngineWarning")

MiB = 1 << 20
DEFAULT = Intervals()  # 5 ms sampling, 100 ms aggregation: 20 samples


HOT_AND_COLD = SyntheticPattern(size=64 * MiB, hot_size=8 * MiB)


class SlowCheckOps(SyntheticOps):
    """Synthetic memory whose access check takes ``cost_us(now_us)`` of clock time."""

    def __init__(self, cost_us: Callable[[int], int], pattern: SyntheticPattern) -> None:
        super().__init__([pattern])
        self.cost_us = cost_us

    def check_accesses(self, ctx: MonitorContext) -> int:
        found = super().check_accesses(ctx)
        ctx.clock.sleep_ns(self.cost_us(ctx.clock.now_ns() // 1000) * 1000)
        return found


def run(
    cost_us: Callable[[int], int],
    seconds: float,
    intervals: Intervals = DEFAULT,
    pattern: SyntheticPattern = HOT_AND_COLD,
) -> tuple[Monitor, list[Snapshot], list[int]]:
    snapshots: list[Snapshot] = []
    ends: list[int] = []

    def after_aggregation(monitor: Monitor) -> None:
        snapshots.extend(monitor.snapshots())
        ends.append(monitor.ctx.clock.now_ns())

    monitor = Monitor(
        synthetic_context(1, intervals=intervals),
        SlowCheckOps(cost_us, pattern),
        seed=2,
        callbacks=Callbacks(after_aggregation=after_aggregation),
    )
    monitor.run_virtual(int(seconds * 1e6))
    return monitor, snapshots, ends


def stamps(snapshots: list[Snapshot]) -> list[tuple[int, int]]:
    return [(s.sample_us, s.aggr_us) for s in snapshots]


def test_round_up_keeps_two_significant_digits() -> None:
    assert [round_up_us(v) for v in (7, 99, 1234, 26_310, 26_000, 999_001)] == [7, 99, 1300, 27_000, 26_000, 1_000_000]


def test_work_within_the_budget_is_deducted_from_the_sleep() -> None:
    with_work, snapshots, ends = run(lambda now: 2000, seconds=2)
    # 2 ms of every 5 ms sample is the check's: still 100 ms aggregations, as configured
    assert stamps(snapshots) == [(5000, 100_000)] * 20
    assert [b - a for a, b in zip(ends, ends[1:], strict=False)] == [100_000_000] * 19
    assert with_work.pace.busy_us == 2000 and not with_work.pace.widened


def test_a_check_that_cannot_keep_the_interval_widens_it_once_it_persists() -> None:
    with pytest.warns(
        EngineWarning,
        match="cannot keep a 5ms sampling interval.*takes? 4ms of a "
        "sample.*samples every 10ms and aggregates every 200ms",
    ):
        monitor, snapshots, ends = run(lambda now: 4000, seconds=3)
    # a sample sleeps at least half its interval: 2.5 + 4 ms (the first one all 5 + 4 ms), so
    # the first three aggregations took 132.5 and 130 ms and say so; then 4 ms is 40% of 10 ms
    assert stamps(snapshots)[:3] == [(6625, 132_500), (6500, 130_000), (6500, 130_000)]
    assert set(stamps(snapshots)[3:]) == {(10_000, 200_000)}
    assert [b - a for a, b in zip(ends[3:], ends[4:], strict=False)] == [200_000_000] * (len(ends) - 4)
    pace = monitor.pace
    assert (pace.sample_us, pace.aggr_us, pace.busy_us, pace.widened) == (10_000, 200_000, 4000, True)
    # the regions' counts keep their range: 20 samples per aggregation
    assert max(int(s.regions["nr_accesses"].max()) for s in snapshots) == 20


def test_far_too_slow_a_check_widens_at_once() -> None:
    monitor, snapshots, _ = run(lambda now: 12_000, seconds=5)
    assert stamps(snapshots)[0] == (14_625, 292_500)
    assert set(stamps(snapshots)[1:]) == {(30_000, 600_000)}  # 12 ms / 0.5 * 1.25


def test_intervals_narrow_back_once_the_check_is_cheap_again() -> None:
    monitor, snapshots, _ = run(lambda now: 12_000 if now < 2_000_000 else 500, seconds=12)
    used = stamps(snapshots)
    assert (30_000, 600_000) in used
    assert used[-1] == (5000, 100_000) and not monitor.pace.widened
    # the aggregation the change falls in, ten calm ones, then back to the configured intervals
    widened_after_2s = [s for s in snapshots if s.time_ns > 2_000_000_000 and s.sample_us == 30_000]
    assert len(widened_after_2s) == 11


def test_an_intervals_goal_stays_above_what_the_check_allows() -> None:
    goal = IntervalsGoal(access_bp=4000, aggrs=1, min_sample_us=1000, max_sample_us=200_000)
    # every page is accessed all the time: the tuner would shrink the interval to 1 ms
    monitor, snapshots, _ = run(
        lambda now: 6000,
        seconds=10,
        intervals=Intervals(sample_us=5000, aggr_us=100_000, goal=goal),
        pattern=SyntheticPattern(size=64 * MiB, hot_size=64 * MiB, hot_rate_hz=math.inf),
    )
    assert monitor.ctx.min_sample_us == 15_000 and monitor.pace.widened
    assert monitor.tunes and {s.sample_us for s in snapshots[1:]} == {15_000}
    monitor.ctx.min_sample_us = 40_000
    tune_intervals(monitor.ctx)
    assert monitor.ctx.intervals.sample_us >= 40_000
