"""The helpers of the behaviour checks (ages, adaptation, patterns) and the kernel-vs-engine differential."""

from __future__ import annotations

import pytest

from kdamon.check.differential import differences, profile
from kdamon.check.invariants import (
    area_mean_age,
    idle_share,
    matching,
    runs,
    split_growth_limit,
    sz_limit,
    three_regions,
    unmerged_neighbours,
)
from kdamon.model import AccessPattern, NrRegions, Snapshot

P = 4096


def _snap(*regions: tuple[int, int, int, int]) -> Snapshot:
    return Snapshot.of_rows(0, 0, 0, 0, regions, 5000, 100000)


def test_ages_and_idle_share() -> None:
    s = _snap((0, 2 * P, 0, 10), (2 * P, 4 * P, 5, 2), (6 * P, 8 * P, 0, 4))
    assert area_mean_age(s, 0, 4 * P) == pytest.approx(6.0)
    assert area_mean_age(s, 0, 4 * P, idle_only=True) == pytest.approx(10.0)
    assert area_mean_age(s, 4 * P, 6 * P) is None
    assert idle_share(s, 0, 8 * P) == pytest.approx(0.5)
    assert runs(s) == [(0, 4 * P), (6 * P, 8 * P)]


def test_unmerged_neighbours_and_limit() -> None:
    assert sz_limit(100 * P, NrRegions(min=10, max=100)) == 10 * P
    assert sz_limit(P, NrRegions(min=10, max=100)) == P
    s = _snap((0, 3 * P, 0, 1), (3 * P, 6 * P, 0, 1), (6 * P, 14 * P, 0, 1), (14 * P, 15 * P, 2, 1))
    found = unmerged_neighbours(s, 10 * P, 0, 15 * P)
    assert len(found) == 1 and found[0].startswith("0x0-0x3000 and 0x3000-0x6000")  # 3+8 > 10 pages; 8+1: rates differ
    assert unmerged_neighbours(s, 5 * P, 0, 15 * P) == []


def test_matching_uses_closed_ranges() -> None:
    s = _snap((0, P, 0, 8), (P, 3 * P, 0, 7), (3 * P, 4 * P, 12, 8), (4 * P, 5 * P, 0, 11))
    assert matching(s, AccessPattern(nr_accesses_max=0, age_min=8)) == (2, 2 * P)
    assert matching(s, AccessPattern(age_min=8, age_max=8)) == (2, 2 * P)
    assert matching(s, AccessPattern(nr_accesses_min=1, age_min=8)) == (1, P)
    assert matching(s, AccessPattern(sz_min=2 * P)) == (1, 2 * P)


def test_split_growth_limit_by_release() -> None:
    assert split_growth_limit(3, 16, (6, 1)) == 6  # below max/3: up to three pieces each
    assert split_growth_limit(6, 16, (6, 12)) == 6  # max/3..max/2: two each
    assert split_growth_limit(9, 16, (6, 12)) == 0  # above max/2: none before 7.0
    assert split_growth_limit(12, 16, (7, 3)) == 3  # every 16 // 4 = 4th region
    assert split_growth_limit(16, 16, (7, 3)) == 0


MAPS = """\
00400000-00410000 r-xp 00000000 08:01 1 /bin/x
00410000-00420000 rw-p 00000000 00:00 0 [heap]
7f0000000000-7f0000100000 rw-p 00000000 00:00 0
7f0000200000-7f0000300000 r--p 00000000 08:01 2 /lib/y
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0 [vsyscall]
"""


def test_three_regions_leave_out_the_two_biggest_gaps() -> None:
    assert three_regions(MAPS) == [
        (0x400000, 0x420000),
        (0x7F0000000000, 0x7F0000300000),
        (0x7FFD00000000, 0x7FFD00021000),
    ]
    with pytest.raises(ValueError, match="three"):
        three_regions("00400000-00410000 r-xp 0 0 0\n")


HOT, COLD = (0, 8 * P), (9 * P, 40 * P)


def _run(hot_nr: int, age_step: int, regions: int, n: int = 12) -> list[Snapshot]:
    out = []
    for i in range(n):
        cold_pieces = [(9 * P + k * P, 9 * P + (k + 1) * P, 0, i * age_step) for k in range(regions - 1)]
        cold_pieces[-1] = (cold_pieces[-1][0], 40 * P, 0, i * age_step)
        out.append(_snap((0, 8 * P, hot_nr, i), *cold_pieces))
    return out


def test_profiles_agree_within_tolerance() -> None:
    engine = profile(_run(20, 1, 12), (HOT, COLD), 20)
    assert engine.areas[0].hot_share == 1.0 and engine.areas[1].hot_share == 0.0 and engine.n == 10
    assert engine.areas[1].age_rate == pytest.approx(1.0) and engine.counts == (12,) * 6
    assert differences(profile(_run(18, 1, 14), (HOT, COLD), 20), engine) == []


@pytest.mark.parametrize(
    "kernel,expected",
    [
        (_run(20, 0, 12), "area 1's mean age grew 0.00 per aggregation in the kernel and 1.00 in the engine"),
        (_run(1, 1, 12), "area 0 was accessed in 0% of the kernel's aggregations and 100% of the engine's"),
        (_run(20, 1, 30), "the kernel kept a median 30 regions and the engine 12"),
    ],
)
def test_a_diverging_kernel_is_named(kernel: list[Snapshot], expected: str) -> None:
    found = differences(profile(kernel, (HOT, COLD), 20), profile(_run(20, 1, 12), (HOT, COLD), 20))
    assert len(found) == 1 and found[0].startswith(expected), found
