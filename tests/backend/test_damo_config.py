"""The peer's kdamonds JSON (as `damo args damon --format json` prints it, human and --raw
numbers) becomes the same monitoring in kdamon's Config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kdamon.backend.damo_config import config_from_damo, load_damo_config, looks_like_damo
from kdamon.errors import ConfigError
from kdamon.model import UINT_MAX, ULONG_MAX, Filter, QuotaGoal, Region, Watermarks

DATA = Path(__file__).parent / "data"


def test_human_numbers() -> None:
    config = load_damo_config((DATA / "damo_kdamonds.json").read_text())
    [kdamond] = config.kdamonds
    [ctx] = kdamond.contexts
    assert (ctx.ops, ctx.targets[0].pid) == ("vaddr", 1234)
    iv = ctx.intervals
    assert (iv.sample_us, iv.aggr_us, iv.update_us, iv.goal.aggrs) == (5000, 100000, 1000000, 0)
    assert (ctx.nr_regions.min, ctx.nr_regions.max) == (10, 1000)
    [scheme] = ctx.schemes
    p = scheme.access_pattern
    assert (p.sz_min, p.sz_max) == (4096, ULONG_MAX)
    assert (p.nr_accesses_min, p.nr_accesses_max) == (0, 2)  # 10 % of 20 samples
    assert (p.age_min, p.age_max) == (50, UINT_MAX)  # 5 s of 100 ms aggregations
    q = scheme.quota
    assert (q.ms, q.bytes, q.reset_interval_ms, q.weights.age_permil) == (10, 128 << 20, 1000, 1000)
    assert q.goals == (QuotaGoal(metric="some_mem_psi_us", target_value=1000),)
    assert q.goal_tuner is None
    assert scheme.watermarks == Watermarks("free_mem_rate", 5_000_000, 500, 400, 200)
    assert scheme.filters == (
        Filter("anon", matching=True),
        Filter("addr", matching=True, addr_start=4096, addr_end=8192),
    )
    assert scheme.target_nid == -1


def test_raw_numbers_and_old_keys() -> None:
    config = load_damo_config((DATA / "damo_kdamonds_raw.json").read_text())
    [kdamond] = config.kdamonds
    assert kdamond.refresh_ms == 1000
    [ctx] = kdamond.contexts
    assert ctx.ops == "paddr"
    assert ctx.targets[0].pid is None and ctx.targets[0].regions == (Region(4 << 30, 8 << 30),)
    assert (ctx.intervals.sample_us, ctx.intervals.aggr_us, ctx.intervals.update_us) == (10000, 200000, 2000000)
    [scheme] = ctx.schemes
    p = scheme.access_pattern
    assert (p.nr_accesses_min, p.nr_accesses_max, p.age_min, p.age_max) == (2, 20, 3, UINT_MAX)
    assert scheme.apply_interval_us == 1_000_000
    assert scheme.quota.reset_interval_ms == ULONG_MAX
    assert scheme.filters == (Filter("memcg", matching=False, allow=True, memcg_path="/workload"),)


def test_defaults_follow_damo() -> None:
    config = config_from_damo([{"contexts": [{"ops": "vaddr", "targets": [{"pid": 5, "regions": []}]}]}])
    ctx = config.kdamonds[0].contexts[0]
    assert ctx.intervals.update_us == 1_000_000  # damo's default, not kdamon's 60 s
    assert ctx.schemes == ()


def test_detects_layout() -> None:
    assert looks_like_damo(json.loads((DATA / "damo_kdamonds.json").read_text()))
    kdamon_doc = {
        "kdamonds": [{"contexts": [{"ops": "vaddr", "intervals": {"sample_us": 5000}, "targets": [{"pid": 1}]}]}]
    }
    assert not looks_like_damo(kdamon_doc)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ops": "nonsense"}, "kdamonds[0].contexts[0].ops"),
        (
            {"targets": [{"pid": 1, "regions": [{"start": "10", "end": "5"}]}]},
            "kdamonds[0].contexts[0].targets[0].regions[0].end",
        ),
        ({"targets": [{"regions": [{"start": "10"}]}]}, "kdamonds[0].contexts[0].targets[0].regions[0].end"),
        ({"intervals": {"sample_us": "5 parsecs"}}, "kdamonds[0].contexts[0].intervals.sample_us"),
        ({"probes": [{"x": 1}]}, "kdamonds[0].contexts[0].probes"),
    ],
)
def test_errors_name_the_field(change: dict[str, object], field: str) -> None:
    ctx = {"ops": "vaddr", "targets": [{"pid": 1, "regions": []}]} | change
    with pytest.raises(ConfigError) as info:
        config_from_damo({"kdamonds": [{"contexts": [ctx]}]})
    assert info.value.field == field


def test_not_a_kdamonds_document() -> None:
    with pytest.raises(ConfigError, match="kdamonds"):
        config_from_damo({"contexts": []})
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_damo_config("{")


def _one_context(**context: object) -> dict[str, object]:
    return {"kdamonds": [{"contexts": [{"ops": "paddr", "targets": [{"regions": []}]} | context]}]}


def test_damo_text_is_read_exactly() -> None:
    scheme = {
        "access_pattern": {
            "sz_bytes": {"min": "4.001 KiB", "max": "1,024.000 GiB"},
            "nr_accesses": {"min": "3 %", "max": 10.5},
            "age": {"min": "1 m 30 s", "max": "1,000 aggr_intervals"},
        },
        "apply_interval_us": "1 s 500 ms",
        "quotas": {"sz_bytes": "4 KB", "reset_interval_ms": "max", "weights": {"age_permil": 500.0}},
    }
    config = config_from_damo(_one_context(intervals={"sample_us": "3 ms", "aggr_us": "100 ms"}, schemes=[scheme]))
    [resolved] = config.kdamonds[0].contexts[0].schemes
    p = resolved.access_pattern
    assert (p.sz_min, p.sz_max) == (4097, 1 << 40)  # damo's 3 decimals: the nearest whole byte
    assert (p.nr_accesses_min, p.nr_accesses_max) == (1, 3)  # of 33: 3 % rounds up, 10.5 % down
    assert (p.age_min, p.age_max) == (900, 1000)
    assert resolved.apply_interval_us == 1_500_000
    assert (resolved.quota.bytes, resolved.quota.reset_interval_ms) == (4096, ULONG_MAX)
    assert resolved.quota.weights.age_permil == 500


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        ({"intervals": {"sample_us": "1.5 us"}}, "kdamonds[0].contexts[0].intervals.sample_us", "not a whole number"),
        (
            {"schemes": [{"access_pattern": {"sz_bytes": {"min": "4.0005 KiB"}}}]},
            "kdamonds[0].contexts[0].schemes[0].access_pattern.sz_bytes.min",
            "not a whole number",
        ),
        (
            {"schemes": [{"access_pattern": {"nr_accesses": {"max": "2.5 samples"}}}]},
            "kdamonds[0].contexts[0].schemes[0].access_pattern.nr_accesses.max",
            "not a whole number",
        ),
        (
            {"schemes": [{"watermarks": {"high_permil": "12.3456 %"}}]},
            "kdamonds[0].contexts[0].schemes[0].watermarks.high_permil",
            "not a whole number",
        ),
    ],
)
def test_values_finer_than_the_field_are_refused(change: dict[str, object], field: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_damo(_one_context(**change))
    assert info.value.field == field
    assert fragment in info.value.message
