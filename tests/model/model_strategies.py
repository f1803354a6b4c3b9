"""Hypothesis strategies that build valid kdamon configurations."""

from __future__ import annotations

from hypothesis import strategies as st

from kdamon.model import (
    ACTIONS,
    CORE_FILTER_TYPES,
    GOAL_TUNERS,
    INT_MAX,
    OPERATIONS,
    OPS_FILTER_TYPES,
    QUOTA_GOAL_METRICS,
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
)

ulongs = st.integers(0, ULONG_MAX)
uints = st.integers(0, UINT_MAX)
# Strings written to sysfs as one value: one line, no NUL, no surrounding blanks.
_one_line = st.characters(blacklist_characters="\n\r\0")
texts = st.text(_one_line, max_size=12).map(str.strip)
paths = st.text(_one_line, min_size=1, max_size=12).map(str.strip).filter(bool)


@st.composite
def regions(draw: st.DrawFn) -> tuple[Region, ...]:
    """Sorted, non-overlapping regions (possibly adjacent)."""
    count = draw(st.integers(0, 3))
    points = sorted(draw(st.sets(ulongs, min_size=2 * count, max_size=2 * count)))
    return tuple(Region(points[i], points[i + 1]) for i in range(0, len(points), 2))


@st.composite
def intervals(draw: st.DrawFn) -> Intervals:
    sample_us = draw(ulongs)
    aggr_us = draw(st.integers(sample_us, ULONG_MAX))
    if draw(st.booleans()):
        goal = IntervalsGoal(
            access_bp=draw(st.integers(0, 10000)),
            aggrs=draw(st.integers(1, ULONG_MAX)),
            min_sample_us=draw(st.integers(0, sample_us)),
            max_sample_us=draw(st.integers(sample_us, ULONG_MAX)),
        )
    else:
        goal = IntervalsGoal(
            access_bp=draw(st.integers(0, 10000)), aggrs=0, min_sample_us=draw(ulongs), max_sample_us=draw(ulongs)
        )
    return Intervals(sample_us=sample_us, aggr_us=aggr_us, update_us=draw(ulongs), goal=goal)


@st.composite
def nr_regions(draw: st.DrawFn) -> NrRegions:
    low = draw(st.integers(3, ULONG_MAX))
    return NrRegions(min=low, max=draw(st.integers(low, ULONG_MAX)))


@st.composite
def quota_goals(draw: st.DrawFn) -> QuotaGoal:
    metric = draw(st.sampled_from(QUOTA_GOAL_METRICS))
    path = draw(paths if metric.startswith("node_memcg_") else texts)
    return QuotaGoal(
        metric=metric,
        target_value=draw(ulongs),
        current_value=draw(ulongs),
        nid=draw(st.integers(0, INT_MAX)),
        path=path,
    )


quotas = st.builds(
    Quota,
    ms=ulongs,
    bytes=ulongs,
    reset_interval_ms=ulongs,
    weights=st.builds(QuotaWeights, sz_permil=uints, nr_accesses_permil=uints, age_permil=uints),
    goals=st.lists(quota_goals(), max_size=2),
    goal_tuner=st.none() | st.sampled_from(GOAL_TUNERS),
    fail_charge_num=uints,
    fail_charge_denom=uints,
)


@st.composite
def watermarks(draw: st.DrawFn) -> Watermarks:
    if draw(st.booleans()):
        return Watermarks(
            metric="none", interval_us=draw(ulongs), high=draw(ulongs), mid=draw(ulongs), low=draw(ulongs)
        )
    high = draw(st.integers(0, 1000))
    mid = draw(st.integers(0, high))
    return Watermarks(
        metric="free_mem_rate", interval_us=draw(ulongs), high=high, mid=mid, low=draw(st.integers(0, mid))
    )


@st.composite
def filters(draw: st.DrawFn) -> Filter:
    type_ = draw(st.sampled_from(CORE_FILTER_TYPES + OPS_FILTER_TYPES))
    layer = draw(st.sampled_from(("auto", "core" if type_ in CORE_FILTER_TYPES else "ops")))
    addr_start, addr_end = draw(ulongs), draw(ulongs)
    low, high = draw(ulongs), draw(ulongs)
    if type_ == "addr":
        addr_start, addr_end = sorted(draw(st.sets(ulongs, min_size=2, max_size=2)))
    if type_ == "hugepage_size":
        low, high = min(low, high), max(low, high)
    return Filter(
        type=type_,
        matching=draw(st.booleans()),
        allow=draw(st.booleans()),
        memcg_path=draw(paths if type_ == "memcg" else texts),
        addr_start=addr_start,
        addr_end=addr_end,
        target_idx=draw(st.integers(0, INT_MAX)),
        min=low,
        max=high,
        layer=layer,
    )


schemes = st.builds(
    Scheme,
    action=st.sampled_from(ACTIONS),
    access_pattern=st.builds(
        AccessPattern,
        sz_min=ulongs,
        sz_max=ulongs,
        nr_accesses_min=uints,
        nr_accesses_max=uints,
        age_min=uints,
        age_max=uints,
    ),
    apply_interval_us=ulongs,
    target_nid=st.integers(-1, INT_MAX),
    quota=quotas,
    watermarks=watermarks(),
    filters=st.lists(filters(), max_size=2),
    dests=st.lists(st.builds(Dest, id=uints, weight=uints), max_size=2),
    max_nr_snapshots=ulongs,
)


@st.composite
def contexts(draw: st.DrawFn) -> Context:
    ops = draw(st.sampled_from(OPERATIONS))
    if ops == "paddr":
        targets = draw(
            st.lists(st.builds(Target, pid=st.none(), regions=regions(), obsolete=st.booleans()), max_size=1)
        )
    else:
        targets = draw(
            st.lists(
                st.builds(Target, pid=st.integers(1, INT_MAX), regions=regions(), obsolete=st.booleans()), max_size=2
            )
        )
    return Context(
        ops=ops,
        addr_unit=draw(st.integers(1, ULONG_MAX)),
        pause=draw(st.booleans()),
        intervals=draw(intervals()),
        nr_regions=draw(nr_regions()),
        targets=targets,
        schemes=draw(st.lists(schemes, max_size=2)),
    )


configs = st.builds(
    Config,
    kdamonds=st.lists(st.builds(Kdamond, contexts=st.lists(contexts(), max_size=1), refresh_ms=uints), max_size=2),
)
