"""Working set sizes on known inputs, and the raw dumps' exact shape."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kdamon.errors import ConfigError
from kdamon.model.snapshot import Snapshot, regions_array
from kdamon.report.raw import raw_json, raw_text, snapshot_json
from kdamon.report.wss import wss_by_target, wss_percentiles, wss_table

PAGE = 4096


def snap(time_ns: int, sizes_and_accesses: list[tuple[int, int]], target_idx: int = 0) -> Snapshot:
    starts, ends, accesses = [], [], []
    address = 0x10000
    for size, nr in sizes_and_accesses:
        starts.append(address)
        ends.append(address + size)
        accesses.append(nr)
        address += size
    return Snapshot(time_ns, 0, 0, target_idx, regions_array(starts, ends, accesses, [7] * len(starts)), 5000, 100000)


def test_wss_counts_regions_above_the_threshold() -> None:
    snapshots = [snap(10, [(PAGE, 0), (2 * PAGE, 3), (4 * PAGE, 1)]), snap(20, [(PAGE, 5)], target_idx=1)]
    at_zero = wss_by_target(snapshots)
    assert [s.target for s in at_zero] == [(0, 0, 0), (0, 0, 1)]
    assert at_zero[0].sizes.tolist() == [6 * PAGE]
    assert at_zero[0].times_ns.tolist() == [10]
    assert at_zero[1].sizes.tolist() == [PAGE]
    assert wss_by_target(snapshots, threshold=1)[0].sizes.tolist() == [2 * PAGE]
    assert wss_by_target(snapshots, threshold=5)[1].sizes.tolist() == [0]


def test_percentiles_are_nearest_rank() -> None:
    sizes = np.array([400, 100, 300, 200], dtype=np.uint64)
    assert wss_percentiles(sizes, (0, 25, 50, 75, 100)) == [
        (0.0, 100),
        (25.0, 100),
        (50.0, 200),
        (75.0, 300),
        (100.0, 400),
    ]
    assert wss_percentiles(sizes, (26,)) == [(26.0, 200)]
    with pytest.raises(ConfigError, match="between 0 and 100"):
        wss_percentiles(sizes, (101,))
    with pytest.raises(ConfigError, match="no snapshots"):
        wss_percentiles(np.array([], dtype=np.uint64))


def test_wss_table() -> None:
    snapshots = [snap(i, [(PAGE * (i + 1), 1), (PAGE, 0)]) for i in range(4)]
    table = wss_table(snapshots, percentiles=(50, 100))
    lines = table.splitlines()
    assert "kdamond 0 context 0 target 0: 4 snapshots, regions with nr_accesses > 0" in lines[0]
    assert lines[2].split() == ["50", "8KiB", str(2 * PAGE)]
    assert lines[3].split() == ["100", "16KiB", str(4 * PAGE)]
    assert lines[4].split() == ["mean", "10KiB", str(10 * 1024)]
    with pytest.raises(ConfigError, match="no snapshots"):
        wss_table([])


def test_raw_json_has_one_object_per_snapshot() -> None:
    snapshots = [snap(10, [(PAGE, 2), (2 * PAGE, 0)]), snap(20, [(PAGE, 9)], target_idx=3)]
    lines = raw_json(snapshots).splitlines()
    assert [json.loads(line) for line in lines] == [
        {
            "time_ns": 10,
            "target": {"kdamond_idx": 0, "context_idx": 0, "target_idx": 0},
            "regions": [
                {"start": 0x10000, "end": 0x11000, "nr_accesses": 2, "age": 7},
                {"start": 0x11000, "end": 0x13000, "nr_accesses": 0, "age": 7},
            ],
        },
        {
            "time_ns": 20,
            "target": {"kdamond_idx": 0, "context_idx": 0, "target_idx": 3},
            "regions": [{"start": 0x10000, "end": 0x11000, "nr_accesses": 9, "age": 7}],
        },
    ]
    assert [json.dumps(snapshot_json(s), separators=(",", ":")) for s in snapshots] == lines


def test_raw_text() -> None:
    text = raw_text([snap(10, [(PAGE, 2), (2 * PAGE, 0)])])
    assert text.splitlines() == [
        "time_ns 10 kdamond 0 context 0 target 0 sample_us 5000 aggr_us 100000 nr_regions 2",
        "  0x10000-0x11000 (4KiB) nr_accesses 2 age 7",
        "  0x11000-0x13000 (8KiB) nr_accesses 0 age 7",
    ]
