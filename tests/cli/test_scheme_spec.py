"""The compact --scheme syntax."""

from __future__ import annotations

import pytest

from kdamon.cli.scheme_spec import parse_scheme
from kdamon.errors import ConfigError
from kdamon.model import UINT_MAX, ULONG_MAX, Filter, Intervals, Watermarks

INTERVALS = Intervals(sample_us=5000, aggr_us=100000)


def test_pattern_with_units_and_percent() -> None:
    scheme = parse_scheme("action=pageout,sz=4K-max,nr_accesses=0%-10%,age=5s-max").resolve(INTERVALS)
    p = scheme.access_pattern
    assert scheme.action == "pageout"
    assert (p.sz_min, p.sz_max) == (4096, ULONG_MAX)
    assert (p.nr_accesses_min, p.nr_accesses_max) == (0, 2)
    assert (p.age_min, p.age_max) == (50, UINT_MAX)
    slower = parse_scheme("age=5s-max").resolve(Intervals(sample_us=5000, aggr_us=1_000_000))
    assert slower.access_pattern.age_min == 5


def test_counts_and_defaults() -> None:
    scheme = parse_scheme("nr_accesses=3-min,age=min-7").resolve(INTERVALS)
    p = scheme.access_pattern
    assert scheme.action == "stat"
    assert (p.nr_accesses_min, p.nr_accesses_max, p.age_min, p.age_max) == (3, 0, 0, 7)
    assert (p.sz_min, p.sz_max) == (0, ULONG_MAX)


def test_quota_watermarks_filters() -> None:
    scheme = parse_scheme(
        "action=migrate_cold,target_nid=1,apply_interval=1s,quota_time=10ms,quota_size=128MiB,"
        "quota_reset=1s,quota_weights=0:50%:100%,wmarks=free_mem_rate:5s:50%:40%:200,"
        "filter=reject:anon,filter=allow:!memcg:/workload,filter=addr:0x1000-0x3000,filter=allow:target:1"
    ).resolve(INTERVALS)
    assert (scheme.target_nid, scheme.apply_interval_us) == (1, 1_000_000)
    q = scheme.quota
    assert (q.ms, q.bytes, q.reset_interval_ms) == (10, 128 << 20, 1000)
    assert (q.weights.sz_permil, q.weights.nr_accesses_permil, q.weights.age_permil) == (0, 500, 1000)
    assert scheme.watermarks == Watermarks("free_mem_rate", 5_000_000, 500, 400, 200)
    assert scheme.filters == (
        Filter("anon", matching=True),
        Filter("memcg", matching=False, allow=True, memcg_path="/workload"),
        Filter("addr", matching=True, addr_start=0x1000, addr_end=0x3000),
        Filter("target", matching=True, allow=True, target_idx=1),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("action=explode", "unknown action"),
        ("speed=3", "KEY=VALUE"),
        ("sz=4K", "MIN-MAX"),
        ("sz=4KB-max", "ambiguous"),
        ("action=stat,action=cold", "twice"),
        ("filter=reject:anon:x", "no argument"),
        ("filter=reject:addr:0x3000-0x1000", "addr_end"),
        ("wmarks=free_mem_rate:5s", "METRIC:INTERVAL"),
    ],
)
def test_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_scheme(text).resolve(INTERVALS)


def test_percent_and_duration_bounds_keep_the_counts_inside_the_range() -> None:
    fast = Intervals(sample_us=3000, aggr_us=100_000)  # at most 33 accesses
    p = parse_scheme("nr_accesses=0%-3%,age=150ms-1s").resolve(fast).access_pattern
    assert (p.nr_accesses_min, p.nr_accesses_max) == (0, 0)  # one access is 3.03 %
    assert (p.age_min, p.age_max) == (2, 10)  # 1.5 aggregations round up to 2
    p = parse_scheme("nr_accesses=3%-max,sz=1.5KiB-1MiB").resolve(fast).access_pattern
    assert (p.nr_accesses_min, p.sz_min, p.sz_max) == (1, 1536, 1 << 20)


def test_filter_addresses_and_sizes_share_the_notation() -> None:
    scheme = parse_scheme("filter=reject:addr:4KiB-0x3000,filter=allow:hugepage_size:2MiB-1G").resolve(INTERVALS)
    assert scheme.filters[0] == Filter("addr", matching=True, addr_start=4096, addr_end=0x3000)
    assert (scheme.filters[1].min, scheme.filters[1].max) == (2 << 20, 1 << 30)
