"""Monitoring intervals auto-tuning (§9.14) and online interval changes (§9.13)."""

from __future__ import annotations

import math

import pytest

from kdamon.engine.core import Monitor
from kdamon.engine.ops.patterns import SyntheticPattern
from kdamon.engine.ops.synthetic import SyntheticOps, synthetic_context
from kdamon.model.config import Intervals, IntervalsGoal

GiB = 1 << 30


def tuned_monitor(rate_hz: float, goal: IntervalsGoal, seconds: float) -> Monitor:
    # the whole space is accessed at rate_hz: the share of sampled accesses is
    # 1 - exp(-rate * sample interval), so only one sampling interval meets the goal
    pattern = SyntheticPattern(size=GiB, hot_size=GiB, hot_rate_hz=rate_hz)
    intervals = Intervals(sample_us=5000, aggr_us=100_000, goal=goal)
    monitor = Monitor(synthetic_context(1, intervals=intervals), SyntheticOps([pattern]), seed=4)
    monitor.run_virtual(int(seconds * 1e6))
    return monitor


def test_tuning_converges_to_the_interval_that_meets_the_access_goal() -> None:
    goal = IntervalsGoal(access_bp=4000, aggrs=3, min_sample_us=1000, max_sample_us=200_000)
    monitor = tuned_monitor(20.0, goal, seconds=120)
    wanted_us = -math.log(1 - 0.4) / 20.0 * 1e6  # about 25.5 ms
    sample_us = monitor.ctx.intervals.sample_us
    assert sample_us == pytest.approx(wanted_us, rel=0.25)
    assert monitor.ctx.intervals.aggr_us == sample_us * 20
    assert monitor.tunes and monitor.tunes[-1].sample_us == sample_us
    assert monitor.tunes[0].sample_us > 5000  # too few accesses at first: grow


def test_tuning_stays_within_the_bounds() -> None:
    goal = IntervalsGoal(access_bp=4000, aggrs=1, min_sample_us=2000, max_sample_us=40_000)
    idle = tuned_monitor(0.0, goal, seconds=30)
    assert idle.ctx.intervals.sample_us == 40_000
    busy = tuned_monitor(math.inf, goal, seconds=30)
    assert busy.ctx.intervals.sample_us == 2000
    # shrinking is at most halving per step
    assert busy.tunes[0].sample_us >= 2500


def test_without_aggrs_nothing_is_tuned() -> None:
    monitor = tuned_monitor(20.0, IntervalsGoal(access_bp=4000, aggrs=0), seconds=5)
    assert monitor.ctx.intervals.sample_us == 5000
    assert monitor.tunes == []


def test_set_intervals_rescales_counts_and_ages() -> None:
    pattern = SyntheticPattern(size=GiB, hot_size=GiB)
    monitor = Monitor(synthetic_context(1), SyntheticOps([pattern]), seed=1)
    monitor.run_virtual(1_000_000)  # ten aggregations, all at full count
    ctx = monitor.ctx
    regions = ctx.targets[0].regions
    ages_before = regions.age.tolist()
    regions.nr_accesses[:] = 10  # half of max 20
    ctx.next_aggregation_sis = ctx.passed_sample_intervals  # at a boundary
    ctx.set_intervals(Intervals(sample_us=10_000, aggr_us=400_000))
    assert regions.nr_accesses.tolist() == [20] * len(regions)  # half of max 40
    assert regions.age.tolist() == [age // 4 for age in ages_before]
    assert ctx.next_aggregation_sis == ctx.passed_sample_intervals + 40
