"""Hot, warm and cold bytes, the histograms and the idle-time percentiles of a snapshot."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kdamon.errors import ConfigError
from kdamon.model.access import Temperature, access_rate_permil, idle_times_us, summarise
from kdamon.model.snapshot import Snapshot

MIB = 1 << 20


def snap(*rows: tuple[int, int, int], sample_us: int = 5000, aggr_us: int = 100000) -> Snapshot:
    """Regions laid end to end: ``(size, nr_accesses, age)`` each."""
    out, start = [], 0
    for size, nr_accesses, age in rows:
        out.append((start, start + size, nr_accesses, age))
        start += size
    return Snapshot.of_rows(0, 0, 0, 0, out, sample_us, aggr_us)


def test_hot_warm_and_cold_add_up_with_the_thresholds_as_documented() -> None:
    # 20 accesses possible: 10 is exactly 50% (hot), 9 is warm; idle 10 aggregations = 1 s (cold), 9 = warm
    s = snap((8 * MIB, 10, 3), (4 * MIB, 9, 3), (64 * MIB, 0, 10), (2 * MIB, 0, 9))
    summary = summarise(s)
    assert (summary.hot_bytes, summary.warm_bytes, summary.cold_bytes) == (8 * MIB, 6 * MIB, 64 * MIB)
    assert summary.total_bytes == 78 * MIB
    stricter = summarise(s, Temperature(hot_permil=600, cold_idle_us=2_000_000))
    assert (stricter.hot_bytes, stricter.cold_bytes) == (0, 0)


def test_histogram_bins() -> None:
    s = snap((MIB, 0, 5), (2 * MIB, 1, 5), (3 * MIB, 2, 20), (4 * MIB, 20, 700), (5 * MIB, 19, 40000))
    summary = summarise(s)
    # rates: 0 -> 0%, 1/20 = 5% -> <10%, 2/20 = 10% -> 10-19%, 20/20 -> 90-100%, 19/20 = 95% -> 90-100%
    assert summary.temperature == (MIB, 2 * MIB, 3 * MIB, 0, 0, 0, 0, 0, 0, 0, 9 * MIB)
    # ages: 0.5 s, 0.5 s, 2 s, 70 s, 4000 s
    assert summary.recency == (3 * MIB, 3 * MIB, 0, 4 * MIB, 0, 5 * MIB)


def test_idle_times_follow_damon_stat() -> None:
    s = snap((MIB, 0, 4), (3 * MIB, 5, 9))
    assert idle_times_us(s).tolist() == [500_000, -1_000_000]
    summary = summarise(s, percentiles=(0, 25, 26, 100))
    assert summary.idle_percentiles_us == ((0.0, -1_000_000), (25.0, -1_000_000), (26.0, -1_000_000), (100.0, 500_000))


def test_unknown_intervals_give_no_rates() -> None:
    s = snap((MIB, 7, 1), sample_us=0, aggr_us=0)
    assert access_rate_permil(s).tolist() == [0]
    assert summarise(s).hot_bytes == 0


@pytest.mark.parametrize("hot, cold", [(0, 1), (1001, 1), (500, -1)])
def test_bad_thresholds_are_refused(hot: int, cold: int) -> None:
    with pytest.raises(ConfigError):
        Temperature(hot_permil=hot, cold_idle_us=cold)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 2**40), st.integers(0, 25), st.integers(0, 10**6)), min_size=1, max_size=30))
def test_every_byte_is_counted_once(rows: list[tuple[int, int, int]]) -> None:
    summary = summarise(snap(*rows))
    total = sum(size for size, _, _ in rows)
    assert summary.total_bytes == total
    assert summary.hot_bytes + summary.warm_bytes + summary.cold_bytes == total
    assert sum(summary.temperature) == total and sum(summary.recency) == total
    idle = [v for _, v in summary.idle_percentiles_us]
    assert idle == sorted(idle)
