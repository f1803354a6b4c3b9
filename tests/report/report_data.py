"""Synthetic snapshots with a known access pattern, for the report tests."""

from __future__ import annotations

from kdamon.model.snapshot import Snapshot, regions_array

MIB = 1 << 20
AREA_A = 0x1000_0000
AREA_B = 0x7F00_0000_0000
AREA_SIZE = 40 * MIB


def two_area_snapshot(index: int, hot: list[tuple[int, int, int]], target_idx: int = 0) -> Snapshot:
    """1 MiB regions over two 40 MiB areas far apart; ``hot`` lists (start, end, nr_accesses)."""
    starts = [AREA_A + i * MIB for i in range(40)] + [AREA_B + i * MIB for i in range(40)]
    accesses = []
    for start in starts:
        level = 0
        for hot_start, hot_end, nr in hot:
            if hot_start <= start < hot_end:
                level = nr
        accesses.append(level)
    return Snapshot(
        time_ns=1_000_000_000 + index * 100_000_000,
        kdamond_idx=0,
        context_idx=0,
        target_idx=target_idx,
        regions=regions_array(starts, [s + MIB for s in starts], accesses, [index] * len(starts)),
        sample_us=5000,
        aggr_us=100000,
    )
