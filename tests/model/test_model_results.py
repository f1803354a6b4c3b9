"""The result types: light, frozen, with a few derived values."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from kdamon.model import (
    IntervalsTune,
    RegionState,
    SchemeApply,
    SchemeStats,
    Snapshot,
    TriedRegion,
)


def _snapshot(sample_us: int, aggr_us: int) -> Snapshot:
    regions = (RegionState(0, 4096, 3, 1), RegionState(8192, 16384, 0, 7))
    return Snapshot.of_rows(
        time_ns=10, kdamond_idx=0, context_idx=0, target_idx=1, rows=regions, sample_us=sample_us, aggr_us=aggr_us
    )


def test_snapshot_derived_values() -> None:
    snapshot = _snapshot(5000, 100000)
    assert snapshot.total_size == 4096 + 8192
    assert snapshot.max_nr_accesses == 20
    assert _snapshot(0, 100).max_nr_accesses == 0  # unknown intervals
    assert snapshot.sizes.tolist() == [4096, 8192]


def test_optional_counters_default_to_none() -> None:
    stats = SchemeStats(nr_tried=1, sz_tried=4096, nr_applied=0, sz_applied=0, qt_exceeds=0)
    assert stats.sz_ops_filter_passed is None and stats.nr_snapshots is None
    assert TriedRegion(0, 4096, 1, 2).sz_filter_passed is None


@pytest.mark.parametrize(
    "value",
    [
        RegionState(0, 1, 0, 0),
        SchemeStats(0, 0, 0, 0, 0),
        TriedRegion(0, 1, 0, 0),
        SchemeApply(1, 0, 0, 0, RegionState(0, 1, 0, 0)),
        IntervalsTune(1, 5000),
    ],
)
def test_results_are_frozen_slotted_and_hashable(value: Any) -> None:
    assert not hasattr(value, "__dict__")
    field = attrs.fields(type(value))[0].name
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(value, field, 0)
    assert hash(value) == hash(attrs.evolve(value))


def test_snapshots_are_frozen_slotted_and_compared_by_content() -> None:
    snapshot = _snapshot(1, 1)
    assert not hasattr(snapshot, "__dict__")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        snapshot.time_ns = 0  # type: ignore[misc]
    assert snapshot == _snapshot(1, 1) and snapshot != _snapshot(1, 2)
    assert snapshot != attrs.evolve(snapshot, regions=snapshot.regions[:1])
