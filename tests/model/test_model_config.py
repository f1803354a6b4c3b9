"""Validation rules of the configuration classes, one by one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import pytest

from kdamon.errors import ConfigError
from kdamon.model import (
    INT_MAX,
    UINT_MAX,
    ULONG_MAX,
    AccessPattern,
    Config,
    Context,
    Dest,
    Filter,
    Intervals,
    IntervalsGoal,
    Kdamond,
    NrRegions,
    Quota,
    QuotaGoal,
    QuotaWeights,
    Region,
    Scheme,
    Target,
    Watermarks,
    field_unit,
    join_path,
    prefix_error,
)

INVALID: list[tuple[str, Callable[[], object], str]] = [
    # (case id, constructor call, expected field)
    ("region-empty", lambda: Region(10, 10), "end"),
    ("region-inverted", lambda: Region(10, 5), "end"),
    ("region-negative", lambda: Region(-1, 5), "start"),
    ("region-too-big", lambda: Region(0, ULONG_MAX + 1), "end"),
    ("region-bool", lambda: Region(False, 5), "start"),
    ("region-str", lambda: Region(0, "5"), "end"),  # type: ignore[arg-type]
    ("target-pid-zero", lambda: Target(pid=0), "pid"),
    ("target-pid-too-big", lambda: Target(pid=INT_MAX + 1), "pid"),
    ("target-overlap", lambda: Target(pid=1, regions=[Region(0, 10), Region(5, 20)]), "regions[1].start"),
    (
        "target-unsorted",
        lambda: Target(pid=1, regions=[Region(0, 10), Region(20, 30), Region(10, 15)]),
        "regions[2].start",
    ),
    ("target-region-type", lambda: Target(regions=[(0, 10)]), "regions[0]"),
    ("target-obsolete-type", lambda: Target(obsolete=1), "obsolete"),  # type: ignore[arg-type]
    ("goal-bp", lambda: IntervalsGoal(access_bp=10001), "access_bp"),
    ("goal-min-max", lambda: IntervalsGoal(aggrs=1, min_sample_us=10, max_sample_us=9), "max_sample_us"),
    ("intervals-sample-aggr", lambda: Intervals(sample_us=10, aggr_us=9), "sample_us"),
    (
        "intervals-goal-below",
        lambda: Intervals(sample_us=10, goal=IntervalsGoal(aggrs=1, min_sample_us=11, max_sample_us=20)),
        "sample_us",
    ),
    (
        "intervals-goal-above",
        lambda: Intervals(sample_us=30, goal=IntervalsGoal(aggrs=1, min_sample_us=11, max_sample_us=20)),
        "sample_us",
    ),
    ("intervals-goal-type", lambda: Intervals(goal=None), "goal"),  # type: ignore[arg-type]
    ("nr-regions-min", lambda: NrRegions(min=2, max=10), "min"),
    ("nr-regions-max", lambda: NrRegions(min=10, max=9), "max"),
    ("pattern-uint", lambda: AccessPattern(nr_accesses_max=UINT_MAX + 1), "nr_accesses_max"),
    ("pattern-age", lambda: AccessPattern(age_min=-1), "age_min"),
    ("pattern-size", lambda: AccessPattern(sz_max=ULONG_MAX + 1), "sz_max"),
    ("quota-goal-metric", lambda: QuotaGoal(metric="cpu"), "metric"),
    ("quota-goal-memcg-path", lambda: QuotaGoal(metric="node_memcg_used_bp"), "path"),
    ("quota-goal-nid", lambda: QuotaGoal(nid=-1), "nid"),
    ("quota-goal-path-type", lambda: QuotaGoal(path=None), "path"),  # type: ignore[arg-type]
    ("weights-uint", lambda: QuotaWeights(age_permil=UINT_MAX + 1), "age_permil"),
    ("quota-tuner", lambda: Quota(goal_tuner="fast"), "goal_tuner"),
    ("quota-goals-type", lambda: Quota(goals=[QuotaWeights()]), "goals[0]"),
    ("quota-ms", lambda: Quota(ms=-1), "ms"),
    ("quota-fail-charge", lambda: Quota(fail_charge_denom=UINT_MAX + 1), "fail_charge_denom"),
    ("wmarks-metric", lambda: Watermarks(metric="cpu"), "metric"),
    ("wmarks-high", lambda: Watermarks(metric="free_mem_rate", high=1001), "high"),
    ("wmarks-mid", lambda: Watermarks(metric="free_mem_rate", high=500, mid=501), "mid"),
    ("wmarks-low", lambda: Watermarks(metric="free_mem_rate", high=500, mid=400, low=401), "low"),
    ("filter-type", lambda: Filter("file"), "type"),
    ("filter-addr", lambda: Filter("addr", addr_start=10, addr_end=10), "addr_end"),
    ("filter-memcg", lambda: Filter("memcg"), "memcg_path"),
    ("filter-hugepage", lambda: Filter("hugepage_size", min=2, max=1), "max"),
    ("filter-layer", lambda: Filter("anon", layer="both"), "layer"),
    ("filter-layer-core", lambda: Filter("young", layer="core"), "layer"),
    ("filter-layer-ops", lambda: Filter("target", layer="ops"), "layer"),
    ("filter-target-idx", lambda: Filter("target", target_idx=-1), "target_idx"),
    (
        "filter-matching",
        lambda: Filter("anon", matching="yes"),  # type: ignore[arg-type]
        "matching",
    ),
    ("dest-id", lambda: Dest(-1, 1), "id"),
    ("dest-weight", lambda: Dest(0, UINT_MAX + 1), "weight"),
    ("scheme-action", lambda: Scheme(action="reclaim"), "action"),
    ("scheme-nid", lambda: Scheme(target_nid=-2), "target_nid"),
    ("scheme-apply", lambda: Scheme(apply_interval_us=ULONG_MAX + 1), "apply_interval_us"),
    (
        "scheme-pattern-type",
        lambda: Scheme(access_pattern=Quota()),  # type: ignore[arg-type]
        "access_pattern",
    ),
    ("scheme-filters-type", lambda: Scheme(filters=[Dest(0, 0)]), "filters[0]"),
    ("context-ops", lambda: Context(ops="raddr"), "ops"),
    ("context-addr-unit", lambda: Context(addr_unit=0), "addr_unit"),
    ("context-pause", lambda: Context(pause=None), "pause"),  # type: ignore[arg-type]
    ("context-vaddr-pid", lambda: Context(targets=[Target(1), Target()]), "targets[1].pid"),
    ("context-fvaddr-pid", lambda: Context(ops="fvaddr", targets=[Target()]), "targets[0].pid"),
    ("context-paddr-pid", lambda: Context(ops="paddr", targets=[Target(1)]), "targets[0].pid"),
    ("context-paddr-two", lambda: Context(ops="paddr", targets=[Target(), Target()]), "targets"),
    ("kdamond-contexts", lambda: Kdamond(contexts=[Context(), Context()]), "contexts"),
    ("kdamond-refresh", lambda: Kdamond(refresh_ms=UINT_MAX + 1), "refresh_ms"),
    ("config-kdamonds-type", lambda: Config(kdamonds=[Context()]), "kdamonds[0]"),
]


@pytest.mark.parametrize(("make", "field"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID])
def test_invalid_values_name_their_field(make: Callable[[], object], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        make()
    assert info.value.field == field
    assert info.value.message


VALID: list[tuple[str, Callable[[], object]]] = [
    ("region-adjacent", lambda: Target(pid=1, regions=[Region(0, 10), Region(10, 20)])),
    (
        "goal-off-ignores-clamps",
        lambda: Intervals(sample_us=50, goal=IntervalsGoal(aggrs=0, min_sample_us=100, max_sample_us=1)),
    ),
    ("goal-on", lambda: Intervals(sample_us=50, goal=IntervalsGoal(aggrs=4, min_sample_us=50, max_sample_us=50))),
    ("sample-zero", lambda: Intervals(sample_us=0, aggr_us=0)),
    ("nr-regions-three", lambda: NrRegions(min=3, max=3)),
    ("pattern-inverted", lambda: AccessPattern(sz_min=10, sz_max=1)),
    ("wmarks-none-unordered", lambda: Watermarks(high=1, mid=2000, low=3000)),
    ("wmarks-equal", lambda: Watermarks(metric="free_mem_rate", high=1000, mid=1000, low=1000)),
    ("filter-auto-core", lambda: Filter("addr", addr_start=0, addr_end=1, layer="core")),
    ("filter-ops", lambda: Filter("hugepage_size", min=2, max=2, layer="ops")),
    ("filter-other-fields-ignored", lambda: Filter("anon", addr_start=5, min=3, max=1)),
    ("paddr-one-target", lambda: Context(ops="paddr", targets=[Target(regions=[Region(0, 1)])])),
    ("paddr-no-target", lambda: Context(ops="paddr")),
    ("scheme-nid-minus-one", lambda: Scheme(target_nid=-1)),
    ("kdamond-no-context", lambda: Kdamond()),
    ("memcg-goal", lambda: QuotaGoal(metric="node_memcg_free_bp", path="/a")),
    ("tuner", lambda: Quota(goal_tuner="temporal")),
]


@pytest.mark.parametrize("make", [case[1] for case in VALID], ids=[case[0] for case in VALID])
def test_valid_edge_cases_are_accepted(make: Callable[[], object]) -> None:
    assert attrs.has(type(make()))


def test_sequences_become_tuples_and_objects_are_frozen() -> None:
    context = Context(targets=[Target(pid=1, regions=[Region(0, 4096)])])
    assert context.targets == (Target(pid=1, regions=(Region(0, 4096),)),)
    assert isinstance(context.targets[0].regions, tuple)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        context.ops = "paddr"  # type: ignore[misc]
    with pytest.raises(ConfigError) as info:
        attrs.evolve(context, ops="paddr")
    assert info.value.field == "targets[0].pid"


def test_defaults() -> None:
    context = Context()
    assert (
        context.ops,
        context.addr_unit,
        context.intervals.sample_us,
        context.intervals.aggr_us,
        context.intervals.update_us,
    ) == ("vaddr", 1, 5000, 100000, 60000000)
    assert (context.nr_regions.min, context.nr_regions.max) == (10, 1000)
    pattern = Scheme().access_pattern
    assert (pattern.sz_min, pattern.sz_max) == (0, AccessPattern.SZ_MAX)
    assert pattern.nr_accesses_max == AccessPattern.NR_ACCESSES_MAX == UINT_MAX
    assert pattern.age_max == AccessPattern.AGE_MAX == UINT_MAX
    assert Scheme().target_nid == -1 and Scheme().action == "stat"
    assert Quota().goal_tuner is None and Target().pid is None


@pytest.mark.parametrize(("sample_us", "aggr_us", "expected"), [(5000, 100000, 20), (0, 100, 100), (3, 10, 3)])
def test_context_max_nr_accesses(sample_us: int, aggr_us: int, expected: int) -> None:
    context = Context(intervals=Intervals(sample_us=sample_us, aggr_us=aggr_us))
    assert context.max_nr_accesses == expected


@pytest.mark.parametrize(
    ("cls", "name", "unit"),
    [
        (Intervals, "sample_us", "us"),
        (Quota, "ms", "ms"),
        (Quota, "bytes", "bytes"),
        (IntervalsGoal, "access_bp", "bp"),
        (QuotaWeights, "age_permil", "permil"),
        (Watermarks, "high", "permil"),
        (Filter, "min", "bytes"),
        (Region, "start", "bytes"),
        (AccessPattern, "sz_max", "bytes"),
        (AccessPattern, "age_max", None),
        (Dest, "id", None),
    ],
)
def test_field_units(cls: type, name: str, unit: str | None) -> None:
    assert field_unit(attrs.fields_dict(cls)[name]) == unit


def test_every_unit_suffixed_field_declares_its_unit() -> None:
    suffixes = {"_us": "us", "_ms": "ms", "_bp": "bp", "_permil": "permil"}
    checked: list[Any] = []
    for cls in (Intervals, IntervalsGoal, Quota, QuotaWeights, Watermarks, Scheme, Kdamond):
        for attribute in attrs.fields(cls):
            for suffix, unit in suffixes.items():
                if attribute.name.endswith(suffix):
                    checked.append(attribute.name)
                    assert field_unit(attribute) == unit, attribute.name
    assert len(checked) >= 10


@pytest.mark.parametrize(
    ("prefix", "field", "joined"),
    [
        ("targets[0]", "pid", "targets[0].pid"),
        ("targets", "[0].pid", "targets[0].pid"),
        ("", "pid", "pid"),
        ("nr_regions", "", "nr_regions"),
        ("a.b", "c", "a.b.c"),
    ],
)
def test_join_path(prefix: str, field: str, joined: str) -> None:
    assert join_path(prefix, field) == joined


def test_prefix_error_keeps_the_message() -> None:
    error = prefix_error("contexts[0]", ConfigError("nr_regions.min", "must be at least 3"))
    assert (error.field, error.message) == ("contexts[0].nr_regions.min", "must be at least 3")
    assert str(error) == "contexts[0].nr_regions.min: must be at least 3"


@pytest.mark.parametrize("bad", ["/a\nb", "/a\rb", "/a\0b"])
def test_cgroup_paths_are_one_line(bad: str) -> None:
    from kdamon.model import Filter, QuotaGoal

    with pytest.raises(ConfigError) as info:
        Filter(type="memcg", memcg_path=bad)
    assert info.value.field == "memcg_path"
    with pytest.raises(ConfigError) as info:
        QuotaGoal(metric="node_memcg_used_bp", target_value=1, path=bad)
    assert info.value.field == "path"
