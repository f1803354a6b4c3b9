"""DAMOS in the engine: matching, stats, quotas, prioritisation, watermarks, filters."""

from __future__ import annotations

import math
from collections import defaultdict

import pytest

from kdamon.engine.core import Callbacks, Monitor
from kdamon.engine.ops.patterns import SyntheticPattern
from kdamon.engine.ops.synthetic import SyntheticOps, synthetic_context
from kdamon.engine.quota import feed_loop_next_input, hot_score
from kdamon.errors import EngineError
from kdamon.model.config import (
    AccessPattern,
    Filter,
    Quota,
    QuotaGoal,
    QuotaWeights,
    Scheme,
    Watermarks,
)
from kdamon.model.snapshot import Snapshot

MiB = 1 << 20
GiB = 1 << 30
HOTCOLD = SyntheticPattern(size=GiB, hot_size=128 * MiB, hot_offset=512 * MiB, hot_rate_hz=math.inf, cold_rate_hz=0.0)
COLD = AccessPattern(nr_accesses_max=0, age_min=5)


def run(
    schemes: tuple[Scheme, ...],
    seconds: float,
    *,
    patterns: tuple[SyntheticPattern, ...] = (HOTCOLD,),
    apply_ns_per_page: int = 0,
    seed: int = 0,
    metrics: object = None,
) -> tuple[Monitor, SyntheticOps, list[tuple[Snapshot, ...]]]:
    ops = SyntheticOps(patterns, apply_ns_per_page=apply_ns_per_page)
    seen: list[tuple[Snapshot, ...]] = []
    monitor = Monitor(
        synthetic_context(len(patterns), schemes=schemes),
        ops,
        seed=seed,
        metrics=metrics,  # type: ignore[arg-type]
        callbacks=Callbacks(after_aggregation=lambda m: seen.append(m.snapshots())),
    )
    monitor.run_virtual(int(seconds * 1e6))
    return monitor, ops, seen


def overlaps(start: int, end: int, lo: int, hi: int) -> bool:
    return start < hi and lo < end


def hot_share(start: int, end: int, lo: int, hi: int) -> float:
    """The part of ``[start, end)`` inside the hot area ``[lo, hi)``."""
    return max(min(end, hi) - max(start, lo), 0) / (end - start)


# -- building blocks -------------------------------------------------------------


def test_feed_loop_next_input() -> None:
    assert feed_loop_next_input(50000, 10000) == 50000  # on goal: unchanged
    assert feed_loop_next_input(50000, 5000) == 75000  # half way: +50 %
    assert feed_loop_next_input(50000, 15000) == 25000  # 50 % over: -50 %
    assert feed_loop_next_input(50000, 19000) == 10000  # floor at 10000
    assert feed_loop_next_input(50000, 20000) == 10000  # 2x over: minimum


def test_hot_score() -> None:
    weights = QuotaWeights(nr_accesses_permil=1000, age_permil=0)
    assert hot_score(20, 0, 20, 100_000, weights) == 99
    assert hot_score(10, 0, 20, 100_000, weights) == 49
    assert hot_score(0, 0, 20, 100_000, weights) == 0
    aged = QuotaWeights(nr_accesses_permil=0, age_permil=1000)
    # age 0: log 0 -> subscore 50; 10 s old and idle: log2 bits of 10 = 4, negated -> 28 / 32
    assert hot_score(0, 0, 20, 100_000, aged) == 49
    assert hot_score(0, 100, 20, 100_000, aged) == 43 * 99 // 100
    assert hot_score(5, 100, 20, 100_000, aged) == 56 * 99 // 100
    assert hot_score(20, 0, 20, 100_000, QuotaWeights()) == 0  # no weights: no priority


# -- stats -------------------------------------------------------------------------


def test_stat_scheme_tries_every_region_once_per_aggregation() -> None:
    monitor, ops, seen = run((Scheme(action="stat"),), seconds=2)
    stats = monitor.scheme_stats()[0]
    assert stats.nr_tried == sum(len(s[0].regions) for s in seen)
    assert stats.sz_tried == GiB * len(seen)
    assert (stats.nr_applied, stats.sz_applied, stats.qt_exceeds) == (0, 0, 0)
    assert stats.nr_snapshots == len(seen) == 20
    assert ops.applied == []


def test_pageout_of_cold_regions_is_recorded_and_counted() -> None:
    monitor, ops, seen = run((Scheme(action="pageout", access_pattern=COLD),), seconds=3)
    stats = monitor.scheme_stats()[0]
    assert ops.applied, "the cold area must be found and paged out"
    hot_lo, hot_hi = HOTCOLD.hot_range(0)
    # a mostly cold region may hold a few hot pages its samples have not hit yet
    assert max(hot_share(a.start, a.end, hot_lo, hot_hi) for a in ops.applied) < 0.01
    assert stats.nr_applied == stats.nr_tried == len(ops.applied)
    assert stats.sz_applied == stats.sz_tried == sum(a.end - a.start for a in ops.applied)
    # applying an action other than stat resets the age of the region
    by_time = defaultdict(list)
    for action in ops.applied:
        by_time[action.time_ns].append((action.start, action.end))
    for snapshots in seen:
        applied_now = by_time.get(snapshots[0].time_ns, [])
        for region in snapshots[0].states():
            if (region.start, region.end) in applied_now:
                assert region.age == 0


def test_apply_interval_and_max_nr_snapshots() -> None:
    schemes = (Scheme(action="stat", apply_interval_us=300_000), Scheme(action="stat", max_nr_snapshots=3))
    monitor, _, seen = run(schemes, seconds=2)
    every_third, limited = monitor.scheme_stats()
    assert every_third.nr_snapshots == 6
    assert limited.nr_snapshots == 3
    assert limited.sz_tried == 3 * GiB


def test_ops_layer_filters_are_refused() -> None:
    with pytest.raises(EngineError, match="anon"):
        Monitor(synthetic_context(1, schemes=(Scheme(filters=(Filter(type="anon"),)),)), SyntheticOps([HOTCOLD]))


def test_addr_filter_keeps_the_action_off_the_range_and_splits_at_its_bounds() -> None:
    lo, hi = 100 * MiB + 4096 * 3, 300 * MiB
    scheme = Scheme(
        action="cold", access_pattern=COLD, filters=(Filter(type="addr", matching=True, addr_start=lo, addr_end=hi),)
    )
    _, ops, _ = run((scheme,), seconds=3)
    assert ops.applied
    assert not any(overlaps(a.start, a.end, lo, hi) for a in ops.applied)
    assert any(a.end == lo for a in ops.applied), "a region must be split at the bound"


def test_target_filter_with_allow() -> None:
    scheme = Scheme(
        action="cold", access_pattern=COLD, filters=(Filter(type="target", matching=True, allow=True, target_idx=1),)
    )
    _, ops, _ = run((scheme,), seconds=3, patterns=(HOTCOLD, HOTCOLD))
    assert ops.applied and {a.target_idx for a in ops.applied} == {1}


# -- quotas --------------------------------------------------------------------------


def window_sums(ops: SyntheticOps, window_ns: int) -> dict[int, int]:
    sums: dict[int, int] = defaultdict(int)
    for action in ops.applied:
        sums[action.time_ns // window_ns] += action.end - action.start
    return sums


def test_size_quota_limits_each_window_and_resumes_where_it_stopped() -> None:
    quota = Quota(bytes=64 * MiB, reset_interval_ms=1000)
    monitor, ops, _ = run((Scheme(action="pageout", quota=quota),), seconds=5.95)
    sums = window_sums(ops, 1_000_000_000)
    assert len(sums) == 6 and all(total == 64 * MiB for total in sums.values())
    stats = monitor.scheme_stats()[0]
    assert stats.qt_exceeds == 5  # every finished window used its quota up
    windows: dict[int, list[int]] = defaultdict(list)
    for action in ops.applied:
        windows[action.time_ns // 1_000_000_000].append(action.start)
    starts = [min(v) for _, v in sorted(windows.items())]
    assert starts[1] > starts[0], "the next window resumes after the charged part"


def test_time_quota_turns_action_cost_into_a_size_limit() -> None:
    # before any history the kernel assumes 4 MiB per ms: 5 ms -> 20 MiB in the first
    # window; then the measured 1 µs per page = 4,096,000 bytes per ms -> 20,480,000
    quota = Quota(ms=5, reset_interval_ms=1000)
    monitor, ops, _ = run((Scheme(action="pageout", quota=quota),), seconds=4.95, apply_ns_per_page=1000)
    sums = window_sums(ops, 1_000_000_000)
    assert [sums[w] for w in range(5)] == [20 * MiB] + [20_480_000] * 4
    assert monitor.ctx.schemes[0].quota.esz == 20_480_000


def test_quota_prioritises_the_coldest_regions() -> None:
    pattern = SyntheticPattern(size=GiB, hot_size=256 * MiB, hot_offset=256 * MiB, hot_rate_hz=100.0, cold_rate_hz=0.0)
    hot_lo, hot_hi = pattern.hot_range(0)

    def hottest_share(weights: QuotaWeights) -> float:
        quota = Quota(bytes=32 * MiB, reset_interval_ms=500, weights=weights)
        _, ops, _ = run((Scheme(action="pageout", quota=quota),), seconds=5, patterns=(pattern,))
        late = [a for a in ops.applied if a.time_ns >= 1_000_000_000]
        assert late
        return max(hot_share(a.start, a.end, hot_lo, hot_hi) for a in late)

    assert hottest_share(QuotaWeights(nr_accesses_permil=1000)) < 0.01
    # without weights every region scores the same: the quota walks through
    # the space in address order and reaches the hot area
    assert hottest_share(QuotaWeights()) > 0.5


def test_user_input_goal_grows_the_quota_while_under_achieving() -> None:
    goal = QuotaGoal(metric="user_input", target_value=10000, current_value=5000)
    quota = Quota(bytes=GiB, reset_interval_ms=100, goals=(goal,))
    esz: list[int] = []
    ops = SyntheticOps([HOTCOLD])
    monitor = Monitor(
        synthetic_context(1, schemes=(Scheme(action="stat", quota=quota),)),
        ops,
        callbacks=Callbacks(after_aggregation=lambda m: esz.append(m.ctx.schemes[0].quota.esz)),
    )
    monitor.run_virtual(1_000_000)
    assert esz[0] == 1  # 10000 bp = 1 byte: goal tuning starts from the bottom
    assert all(later > earlier for earlier, later in zip(esz, esz[1:], strict=False))


# -- watermarks ----------------------------------------------------------------------


class ClockedMetrics:
    """free_mem_rate as a function of the monitor's clock."""

    def __init__(self, schedule: list[tuple[int, int]]) -> None:
        self.schedule = schedule  # (from_us, permil)
        self.monitor: Monitor | None = None

    def free_mem_rate_permil(self) -> int:
        assert self.monitor is not None
        now_us = self.monitor.ctx.clock.now_ns() // 1000
        return [value for start, value in self.schedule if start <= now_us][-1]

    def some_mem_psi_total_us(self) -> int:
        return 0

    def node_mem_bp(self, nid: int, *, used: bool) -> int:
        return 0


def test_watermarks_gate_sampling_and_schemes() -> None:
    wmarks = Watermarks(metric="free_mem_rate", interval_us=100_000, high=500, mid=400, low=200)
    # too much free memory, then between mid and high (stays off), then below mid
    metrics = ClockedMetrics([(0, 800), (1_000_000, 450), (2_000_000, 300)])
    sampled_at: list[int] = []
    ops = SyntheticOps([HOTCOLD])
    monitor = Monitor(
        synthetic_context(1, schemes=(Scheme(action="stat", watermarks=wmarks),)),
        ops,
        metrics=metrics,
        callbacks=Callbacks(after_sampling=lambda m: sampled_at.append(m.ctx.clock.now_ns())),
    )
    metrics.monitor = monitor
    monitor.run_virtual(3_000_000)
    assert sampled_at and min(sampled_at) >= 2_000_000_000
    assert len(sampled_at) == 200
    assert monitor.scheme_stats()[0].nr_snapshots == 10


def test_the_real_free_memory_rate_is_read_from_proc() -> None:
    wmarks = Watermarks(metric="free_mem_rate", interval_us=100_000, high=1000, mid=1000, low=0)
    monitor, _, seen = run((Scheme(action="stat", watermarks=wmarks),), seconds=0.5)
    assert monitor.ctx.schemes[0].activated
    assert len(seen) == 5
