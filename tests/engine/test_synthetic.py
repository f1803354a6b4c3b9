"""Synthetic address spaces: ground truth, region invariants, and finding the hot area."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine_helpers import assert_well_formed
from kdamon.engine.core import Callbacks, Monitor
from kdamon.engine.ops.patterns import SyntheticPattern
from kdamon.engine.ops.synthetic import SyntheticOps, synthetic_context
from kdamon.model.config import Context, NrRegions, Region, Target
from kdamon.model.snapshot import Snapshot

MiB = 1 << 20
GiB = 1 << 30


def mean_accesses(snapshot: Snapshot, lo: int, hi: int) -> float:
    """Bytes-weighted mean nr_accesses of the regions over ``[lo, hi)``."""
    total = weighted = 0
    for region in snapshot.states():
        overlap = min(region.end, hi) - max(region.start, lo)
        if overlap > 0:
            total += overlap
            weighted += overlap * region.nr_accesses
    return weighted / total


def collect(pattern: SyntheticPattern, seconds: float, seed: int = 0) -> list[Snapshot]:
    snapshots: list[Snapshot] = []
    monitor = Monitor(
        synthetic_context(1),
        SyntheticOps([pattern]),
        seed=seed,
        callbacks=Callbacks(after_aggregation=lambda m: snapshots.extend(m.snapshots())),
    )
    monitor.run_virtual(int(seconds * 1e6))
    return snapshots


# -- ground truth ------------------------------------------------------------


def test_ground_truth_is_deterministic_and_seed_dependent() -> None:
    pattern = SyntheticPattern(hot_rate_hz=50.0, cold_rate_hz=50.0)
    addrs = np.arange(0, 64 * MiB, 4096, dtype=np.int64)
    first = pattern.accessed(addrs, 10_000, 15_000)
    assert np.array_equal(first, pattern.accessed(addrs, 10_000, 15_000))
    other_seed = SyntheticPattern(hot_rate_hz=50.0, cold_rate_hz=50.0, seed=1)
    assert not np.array_equal(first, other_seed.accessed(addrs, 10_000, 15_000))
    assert not np.array_equal(first, pattern.accessed(addrs, 15_000, 20_000))


def test_ground_truth_probability_follows_the_rate_and_window() -> None:
    pattern = SyntheticPattern(size=GiB, hot_size=GiB // 2, hot_rate_hz=100.0, cold_rate_hz=0.0)
    hot = np.arange(0, GiB // 2, 4096, dtype=np.int64)
    cold = hot + GiB // 2
    for window_us in (1000, 5000, 20000):
        share = pattern.accessed(hot, 0, window_us).mean()
        assert share == pytest.approx(-math.expm1(-100.0 * window_us / 1e6), abs=0.01)
        assert not pattern.accessed(cold, 0, window_us).any()


def test_infinite_rate_is_always_accessed() -> None:
    pattern = SyntheticPattern(size=GiB, hot_size=64 * MiB, hot_offset=128 * MiB)
    addrs = np.array([128 * MiB, 192 * MiB - 1, 192 * MiB, 0], dtype=np.int64)
    assert pattern.accessed_in_interval(addrs, 7, 5000).tolist() == [True, True, False, False]


@pytest.mark.parametrize(
    ("kind", "expected_offsets"),
    [
        ("hotcold", [0, 0, 0, 0, 0, 0, 0]),
        ("stairs", [0, 1, 2, 3, 0, 1, 2]),
        ("zigzag", [0, 1, 2, 3, 2, 1, 0]),
    ],
)
def test_hot_area_moves_by_kind(kind: str, expected_offsets: list[int]) -> None:
    pattern = SyntheticPattern(
        kind=kind,
        size=4 * 64 * MiB,  # type: ignore[arg-type]
        hot_size=64 * MiB,
        step_us=1000,
        base=1 << 32,
    )
    offsets = [(pattern.hot_range(step * 1000)[0] - (1 << 32)) // (64 * MiB) for step in range(7)]
    assert offsets == expected_offsets


def test_invalid_patterns_are_refused() -> None:
    with pytest.raises(ValueError, match="hot_size"):
        SyntheticPattern(size=MiB, hot_size=2 * MiB)
    with pytest.raises(ValueError, match="multiple"):
        SyntheticPattern(size=MiB + 1)


# -- invariants ----------------------------------------------------------------


@settings(max_examples=12, deadline=None)
@given(
    kind=st.sampled_from(["hotcold", "stairs", "zigzag"]),
    size_pages=st.integers(64, 1 << 20),
    min_nr=st.integers(3, 40),
    extra_max=st.integers(0, 200),
    seed=st.integers(0, 2**31),
)
def test_regions_stay_well_formed_after_every_aggregation(
    kind: str, size_pages: int, min_nr: int, extra_max: int, seed: int
) -> None:
    size = size_pages * 4096
    pattern = SyntheticPattern(
        kind=kind,
        size=size,  # type: ignore[arg-type]
        hot_size=max(size // 8 // 4096, 1) * 4096,
        base=1 << 30,
        hot_rate_hz=300.0,
        cold_rate_hz=5.0,
        step_us=300_000,
        seed=seed,
    )
    nr_regions = NrRegions(min=min_nr, max=min_nr + extra_max)
    checked = {"aggregations": 0, "samples": 0}

    def after_aggregation(monitor: Monitor) -> None:
        for snapshot in monitor.snapshots():
            assert_well_formed(snapshot, [(pattern.base, pattern.end)], min(min_nr, size_pages), nr_regions.max)
            assert all(r.nr_accesses <= snapshot.max_nr_accesses for r in snapshot.states())
        checked["aggregations"] += 1

    def after_sampling(monitor: Monitor) -> None:  # sees the regions after each split
        for snapshot in monitor.snapshots():
            assert_well_formed(snapshot, [(pattern.base, pattern.end)], min(min_nr, size_pages), nr_regions.max)
        checked["samples"] += 1

    monitor = Monitor(
        synthetic_context(1, nr_regions=nr_regions),
        SyntheticOps([pattern]),
        seed=seed,
        callbacks=Callbacks(after_sampling=after_sampling, after_aggregation=after_aggregation),
    )
    monitor.run_virtual(1_500_000)
    assert checked == {"aggregations": 15, "samples": 300}


def test_user_regions_win_over_the_initial_split() -> None:
    pattern = SyntheticPattern(size=GiB, hot_size=64 * MiB)
    context = Context(targets=(Target(pid=1, regions=(Region(0, 16 * MiB), Region(32 * MiB, 48 * MiB))),))
    seen: list[Snapshot] = []
    monitor = Monitor(
        context,
        SyntheticOps([pattern]),
        seed=3,
        callbacks=Callbacks(after_aggregation=lambda m: seen.extend(m.snapshots())),
    )
    monitor.run_virtual(1_000_000)
    for snapshot in seen:
        assert_well_formed(snapshot, [(0, 16 * MiB), (32 * MiB, 48 * MiB)], 2, 1000)


# -- accuracy ------------------------------------------------------------------


@pytest.mark.parametrize(("hot_rate", "cold_rate"), [(math.inf, 0.0), (100.0, 2.0)])
@pytest.mark.parametrize("size", [GiB, 64 * GiB])
def test_hotcold_hot_area_gets_clearly_more_accesses(hot_rate: float, cold_rate: float, size: int) -> None:
    hot_size = size // 16
    pattern = SyntheticPattern(
        size=size, hot_size=hot_size, hot_offset=size // 2, hot_rate_hz=hot_rate, cold_rate_hz=cold_rate
    )
    snapshots = collect(pattern, seconds=5, seed=11)
    hot_lo, hot_hi = pattern.hot_range(0)
    expected_hot = -math.expm1(-hot_rate * 0.005) * 20 if hot_rate != math.inf else 20
    for snapshot in snapshots[-10:]:
        hot = mean_accesses(snapshot, hot_lo, hot_hi)
        cold = min(mean_accesses(snapshot, pattern.base, hot_lo), mean_accesses(snapshot, hot_hi, pattern.end))
        assert hot >= 0.6 * expected_hot
        assert cold <= 0.2 * hot


@pytest.mark.parametrize("kind", ["stairs", "zigzag"])
def test_moving_hot_area_is_followed(kind: str) -> None:
    pattern = SyntheticPattern(
        kind=kind,
        size=GiB,
        hot_size=128 * MiB,  # type: ignore[arg-type]
        step_us=3_000_000,
        hot_rate_hz=math.inf,
        cold_rate_hz=0.0,
    )
    snapshots = collect(pattern, seconds=24, seed=5)
    followed = 0
    late_in_step = [s for s in snapshots if (s.time_ns // 1000) % pattern.step_us >= 2_000_000]
    for snapshot in late_in_step:
        # the area was hot since the start of this step
        lo, hi = pattern.hot_range(snapshot.time_ns // 1000)
        hot = mean_accesses(snapshot, lo, hi)
        cold = mean_accesses(snapshot, hi, pattern.end) if hi < pattern.end else 0.0
        followed += hot >= 15 and cold <= 2
    assert late_in_step and followed == len(late_in_step)
