"""The snapshot invariants, on hand-made snapshots and on the reference engine's output."""

from __future__ import annotations

import pytest

from kdamon.check.invariants import area_mean_accesses, snapshot_violations, wss_bytes
from kdamon.model import Context, Intervals, NrRegions, Snapshot, Target

P = 4096
NR = NrRegions(min=3, max=5)


def _snap(*regions: tuple[int, int, int], sample_us: int = 5000, aggr_us: int = 100000) -> Snapshot:
    return Snapshot.of_rows(0, 0, 0, 0, [(s, e, n, 0) for s, e, n in regions], sample_us, aggr_us)


def test_a_sound_snapshot_has_no_violation() -> None:
    assert snapshot_violations(_snap((0, P, 0), (P, 3 * P, 20), (5 * P, 6 * P, 3)), NR) == []


@pytest.mark.parametrize(
    "regions,expected",
    [
        (((0, P, 0), (P, 2 * P, 21), (2 * P, 3 * P, 0)), "nr_accesses 21 > aggr/sample = 20"),
        (((0, 2 * P, 0), (P, 3 * P, 0), (3 * P, 4 * P, 0)), "overlaps or precedes"),
        (((2 * P, 3 * P, 0), (0, P, 0), (3 * P, 4 * P, 0)), "overlaps or precedes"),
        (((0, P, 0), (P, P, 0), (P, 2 * P, 0)), "empty or inverted"),
        (((0, P + 1, 0), (2 * P, 3 * P, 0), (3 * P, 4 * P, 0)), "not page aligned"),
        (tuple((i * P, (i + 1) * P, 0) for i in range(6)), "more than the maximum 5"),
        (((0, P, 0), (P, 2 * P, 0)), "fewer than the minimum 3"),
    ],
)
def test_violations(regions: tuple[tuple[int, int, int], ...], expected: str) -> None:
    problems = snapshot_violations(_snap(*regions), NR)
    assert any(expected in p for p in problems), problems


def test_minimum_only_once_settled() -> None:
    few = _snap((0, P, 0), (P, 2 * P, 0))
    assert snapshot_violations(few, NR, settled=False) == []


def test_a_time_based_aggregation_may_hold_one_sample_more() -> None:
    """Before 6.7 an aggregation ends on the coarse clock: 21 samples of 5 ms in 100 ms happen, 22 do not."""
    assert snapshot_violations(_snap((0, P, 0), (P, 2 * P, 21), (2 * P, 3 * P, 0)), NR, extra_samples=1) == []
    problems = snapshot_violations(_snap((0, P, 0), (P, 2 * P, 22), (2 * P, 3 * P, 0)), NR, extra_samples=1)
    assert any("nr_accesses 22 > aggr/sample + 1 = 21" in p for p in problems), problems


def test_empty_snapshot() -> None:
    assert snapshot_violations(_snap(), NR) == ["the snapshot has no regions"]


def test_area_mean_and_wss() -> None:
    regions = _snap((0, 2 * P, 10), (2 * P, 4 * P, 0), (4 * P, 8 * P, 5)).regions
    assert area_mean_accesses(regions, 0, 4 * P) == pytest.approx(5.0)
    assert area_mean_accesses(regions, P, 3 * P) == pytest.approx(5.0)
    assert area_mean_accesses(regions, 8 * P, 9 * P) == 0.0
    assert wss_bytes(regions, 5) == 6 * P and wss_bytes(regions, 11) == 0


def test_the_reference_engine_keeps_the_invariants() -> None:
    """The same invariants hold on the engine's output (what the guest check compares the kernel with)."""
    from kdamon.engine.core import Callbacks, Monitor
    from kdamon.engine.ops.patterns import SyntheticPattern
    from kdamon.engine.ops.synthetic import SyntheticOps

    nr = NrRegions(min=10, max=30)
    base, size, hot = 1 << 30, 72 << 20, 8 << 20
    context = Context(intervals=Intervals(sample_us=5000, aggr_us=100000), nr_regions=nr, targets=(Target(pid=1),))
    snapshots: list[Snapshot] = []
    monitor = Monitor(
        context,
        SyntheticOps([SyntheticPattern(kind="hotcold", size=size, hot_size=hot, base=base)]),
        seed=3,
        callbacks=Callbacks(after_aggregation=lambda m: snapshots.extend(m.snapshots())),
    )
    monitor.run_virtual(100000 * 20)
    assert len(snapshots) >= 19
    for number, snap in enumerate(snapshots):
        assert snapshot_violations(snap, nr, settled=number >= len(snapshots) // 2) == [], number
    late = snapshots[-5:]
    assert min(area_mean_accesses(s.regions, base, base + hot) for s in late) >= 15
    assert max(area_mean_accesses(s.regions, base + hot, base + size) for s in late) <= 2
