"""Region bookkeeping: sampling, counting, merge, split, set, initial regions."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from kdamon.engine.regions import PAGE_SIZE, RegionList, evenly_split, three_regions
from kdamon.model import RegionState

P = PAGE_SIZE


def states(regions: RegionList) -> list[RegionState]:
    """The regions as result objects, in the order of a snapshot's region array."""
    return [RegionState(*row) for row in regions.as_array().tolist()]


def test_sampling_addresses_fall_inside_their_regions_even_above_4gib() -> None:
    regions = RegionList.from_ranges([(0, P), (1 << 40, (1 << 40) + (64 << 30))])
    rng = np.random.default_rng(0)
    seen_high_half = False
    for _ in range(200):
        addrs = regions.pick_sampling_addrs(rng)
        assert ((regions.start <= addrs) & (addrs < regions.end)).all()
        seen_high_half |= bool(addrs[1] >= (1 << 40) + (32 << 30))
    assert seen_high_half, "samples must cover the whole span, not its low 32 bits"


def test_record_accesses_counts_and_moving_sum() -> None:
    regions = RegionList([(0, P, 0, 0, 4, 0)])  # last aggregation saw 4 of 10
    regions.record_accesses(np.array([False]), len_window=10)
    assert regions.nr_accesses.tolist() == [0]
    assert regions.nr_accesses_bp.tolist() == [0]  # 0 - 4000, but never below zero
    regions.record_accesses(np.array([True]), len_window=10)
    assert regions.nr_accesses.tolist() == [1]
    assert regions.nr_accesses_bp.tolist() == [10000 - 4000]
    regions.reset_aggregated()
    assert (regions.nr_accesses.tolist(), regions.last_nr_accesses.tolist(), regions.nr_accesses_bp.tolist()) == (
        [0],
        [1],
        [10000],
    )


def test_merge_joins_adjacent_similar_regions_with_weighted_averages() -> None:
    regions = RegionList(
        [(0, P, 10, 0, 0, 4), (P, 4 * P, 12, 0, 0, 0), (4 * P, 5 * P, 30, 0, 0, 1), (6 * P, 7 * P, 30, 0, 0, 1)]
    )
    regions.merge(threshold=2, sz_limit=1 << 30)
    # 10 and 12 merge (size-weighted: (10*1 + 12*3) // 4 = 11; age (4*1 + 0) // 4 = 1);
    # 30 differs too much; the last region is not adjacent
    assert [(s.start, s.end, s.nr_accesses, s.age) for s in states(regions)] == [
        (0, 4 * P, 11, 1),
        (4 * P, 5 * P, 30, 1),
        (6 * P, 7 * P, 30, 1),
    ]
    assert regions.nr_accesses_bp.tolist()[0] == 110000


def test_merge_chains_collapse_in_one_pass_but_respect_the_size_limit() -> None:
    regions = RegionList([(i * P, (i + 1) * P, 5, 0, 0, 0) for i in range(6)])
    regions.merge(threshold=0, sz_limit=2 * P)
    assert regions.ranges() == [(0, 2 * P), (2 * P, 4 * P), (4 * P, 6 * P)]


def test_update_ages() -> None:
    regions = RegionList([(0, P, 5, 0, 5, 3), (P, 2 * P, 9, 0, 5, 3)])
    regions.update_ages(threshold=2)
    assert regions.age.tolist() == [4, 0]


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 5000), min_size=1, max_size=30),
    nr_subs=st.sampled_from([2, 3]),
    seed=st.integers(0, 2**32),
)
def test_split_keeps_coverage_and_copies_counters(sizes: list[int], nr_subs: int, seed: int) -> None:
    rows, start = [], 0
    for index, pages in enumerate(sizes):
        rows.append((start, start + pages * P, index, index * 10000, index, index))
        start += (pages + index % 2) * P  # some gaps between regions
    regions = RegionList(rows)
    regions.split(nr_subs, np.random.default_rng(seed), P)
    new = states(regions)
    assert len(rows) <= len(new) <= nr_subs * len(rows)
    for row in rows:
        parts = [r for r in new if row[0] <= r.start < row[1]]
        assert parts[0].start == row[0] and parts[-1].end == row[1]
        assert all(a.end == b.start for a, b in zip(parts, parts[1:], strict=False))
        assert all(p.start % P == 0 and p.end % P == 0 for p in parts)
        assert {(p.nr_accesses, p.age) for p in parts} == {(row[2], row[5])}
        if row[1] - row[0] <= 2 * P:
            assert len(parts) == 1


def test_split_at_copies_the_counters_to_the_right_part() -> None:
    regions = RegionList([(0, 8 * P, 7, 70000, 6, 3), (8 * P, 9 * P)])
    regions.split_at(0, 3 * P)
    assert regions.ranges() == [(0, 3 * P), (3 * P, 8 * P), (8 * P, 9 * P)]
    assert regions.nr_accesses.tolist() == [7, 7, 0]
    assert regions.last_nr_accesses.tolist() == [6, 6, 0]
    assert regions.age.tolist() == [3, 3, 0]


def test_set_ranges_keeps_counters_stretches_fills_holes_and_drops_outsiders() -> None:
    regions = RegionList(
        [(0, P, 1, 0, 0, 1), (2 * P, 3 * P, 2, 0, 0, 2), (5 * P, 6 * P, 3, 0, 0, 3), (20 * P, 21 * P, 4, 0, 0, 4)]
    )
    regions.set_ranges([(P // 2, 8 * P - 1), (10 * P, 12 * P)], P)
    assert [(s.start, s.end, s.nr_accesses) for s in states(regions)] == [
        (0, P, 1),  # first region stretched down to the aligned range start
        (P, 2 * P, 0),  # holes filled with fresh regions
        (2 * P, 3 * P, 2),
        (3 * P, 5 * P, 0),
        (5 * P, 8 * P, 3),  # last region stretched up to the aligned range end
        (10 * P, 12 * P, 0),  # a range without regions gets one
    ]


def test_evenly_split_like_6_12_vaddr_init() -> None:
    ranges = [(0, 100 * P), (200 * P, 203 * P), (300 * P, 330 * P)]
    pieces = evenly_split(ranges, min_nr_regions=10, min_region=P)
    # goal 133 pages / 10 = 13.3 pages: 100 pages -> 7 pieces of 14 pages (the last
    # absorbs the rest); 3 pages stay whole; 30 pages -> 2 pieces of 15
    assert pieces[:7] == [(i * 14 * P, (i + 1) * 14 * P) for i in range(6)] + [(84 * P, 100 * P)]
    assert pieces[7] == (200 * P, 203 * P)
    assert pieces[8:] == [(300 * P, 315 * P), (315 * P, 330 * P)]


def test_three_regions_cut_at_the_two_biggest_gaps() -> None:
    maps = [(0x1000, 0x3000), (0x3000, 0x4000), (0x10000, 0x11000), (0x12000, 0x13000), (0x90000, 0x91000)]
    # gaps: 0xc000 (0x4000-0x10000), 0x1000, 0x7d000 (0x13000-0x90000)
    assert three_regions(maps) == [(0x1000, 0x4000), (0x10000, 0x13000), (0x90000, 0x91000)]


def test_three_regions_earlier_gap_wins_a_tie_and_needs_two_gaps() -> None:
    maps = [(0, P), (2 * P, 3 * P), (4 * P, 5 * P), (6 * P, 7 * P)]
    assert three_regions(maps) == [(0, P), (2 * P, 3 * P), (4 * P, 7 * P)]
    assert three_regions([(0, P), (P, 2 * P)]) is None
    assert three_regions([(0, P), (2 * P, 3 * P)]) is None
    assert three_regions([]) is None
