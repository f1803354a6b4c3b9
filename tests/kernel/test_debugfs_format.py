"""The debugfs file formats: what encodes, what decodes back, what is refused."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kdamon.errors import KernelError
from kdamon.kernel.debugfs_format import (
    ACTIONS,
    MAX_TARGETS,
    Layout,
    decode_context,
    encode_context,
    parse_schemes,
    parse_target_ids,
    unsupported_fields,
)
from kdamon.model import (
    UINT_MAX,
    ULONG_MAX,
    AccessPattern,
    Context,
    Dest,
    Filter,
    Intervals,
    IntervalsGoal,
    Kdamond,
    NrRegions,
    Quota,
    QuotaWeights,
    Region,
    Scheme,
    SchemeStats,
    Target,
    Watermarks,
)

ulongs = st.integers(0, ULONG_MAX)
uints = st.integers(0, UINT_MAX)


def ordered(values: st.SearchStrategy[int], n: int) -> st.SearchStrategy[list[int]]:
    return st.lists(values, min_size=n, max_size=n).map(sorted)


@st.composite
def schemes(draw: st.DrawFn) -> Scheme:
    sz, acc, age = draw(ordered(ulongs, 2)), draw(ordered(uints, 2)), draw(ordered(uints, 2))
    low, mid, high = draw(ordered(st.integers(0, 1000), 3))
    return Scheme(
        action=draw(st.sampled_from(ACTIONS)),
        access_pattern=AccessPattern(sz[0], sz[1], acc[0], acc[1], age[0], age[1]),
        quota=Quota(
            ms=draw(ulongs),
            bytes=draw(ulongs),
            reset_interval_ms=draw(ulongs),
            weights=QuotaWeights(draw(uints), draw(uints), draw(uints)),
        ),
        watermarks=Watermarks(
            metric=draw(st.sampled_from(("none", "free_mem_rate"))),
            interval_us=draw(ulongs),
            high=high,
            mid=mid,
            low=low,
        ),
    )


@st.composite
def region_lists(draw: st.DrawFn) -> tuple[Region, ...]:
    edges = sorted(draw(st.sets(st.integers(0, 1 << 47), max_size=6)))
    return tuple(Region(a, b) for a, b in zip(edges[::2], edges[1::2], strict=False))


@st.composite
def contexts(draw: st.DrawFn) -> Context:
    sample = draw(st.integers(1, 10**6))
    intervals = Intervals(sample_us=sample, aggr_us=draw(st.integers(sample, 10**7)), update_us=draw(ulongs))
    lo = draw(st.integers(3, 10**4))
    nr = NrRegions(min=lo, max=draw(st.integers(lo, 10**5)))
    if draw(st.booleans()):
        targets: tuple[Target, ...] = (Target(regions=draw(region_lists())),)
        ops = "paddr"
    else:
        pids = draw(st.lists(st.integers(43, 2**22), unique=True, max_size=4))
        targets = tuple(Target(pid=p, regions=draw(region_lists())) for p in pids)
        ops = "vaddr"
    return Context(
        ops=ops,
        intervals=intervals,
        nr_regions=nr,
        targets=targets,
        schemes=tuple(draw(st.lists(schemes(), max_size=3))),
    )


@settings(max_examples=60)
@given(ctx=contexts(), indices=st.booleans())
def test_encode_then_decode_is_identity(ctx: Context, indices: bool) -> None:
    layout = Layout(region_ids_are_indices=indices)
    assert unsupported_fields(Kdamond(contexts=(ctx,)), layout) == []
    files = encode_context(ctx, layout)
    assert files.schemes is not None
    stats = "".join(line + " 1 2 3 4 5\n" for line in files.schemes.splitlines())
    target_ids = "42\n" if files.target_ids == "paddr\n" else files.target_ids
    assert decode_context(files.attrs, target_ids, files.init_regions, stats, layout) == ctx


def test_stats_of_both_layouts() -> None:
    line = "0 10 0 5 0 7 5 0 0 0 0 0 0 0 0 0 0 0"
    assert parse_schemes(f"{line} 1 4096 1 4096 0\n")[0][1] == SchemeStats(1, 4096, 1, 4096, 0)
    assert parse_schemes(f"{line} 3 8192\n")[0][1] == SchemeStats(3, 8192, None, None, None)  # 5.16: unknown
    assert parse_schemes(f"{line} 3 8192\n")[0][0].access_pattern == AccessPattern(0, 10, 0, 5, 0, 7)
    with pytest.raises(KernelError, match="20 or 23"):
        parse_schemes(line + "\n")


def test_target_ids() -> None:
    assert parse_target_ids("42\n") == ("paddr", [])
    assert parse_target_ids("paddr\n") == ("paddr", [])
    assert parse_target_ids("1 2 3\n") == ("vaddr", [1, 2, 3])
    assert parse_target_ids("\n") == ("vaddr", [])
    with pytest.raises(KernelError):
        parse_target_ids("1 x\n")


def test_5_15_layout_refuses_schemes_and_regions() -> None:
    ctx = Context(targets=(Target(pid=100, regions=(Region(0, 4096),)),), schemes=(Scheme(),))
    problems = unsupported_fields(Kdamond(contexts=(ctx,)), Layout(schemes=False))
    assert any("targets[0].regions" in p for p in problems)
    assert any(p.startswith("contexts[0].schemes:") for p in problems)
    files = encode_context(Context(targets=(Target(pid=100),)), Layout(schemes=False))
    assert files.schemes is None and files.init_regions is None


@pytest.mark.parametrize(
    ("ctx", "field"),
    [
        (Context(ops="fvaddr", targets=(Target(pid=5),)), "ops"),
        (Context(addr_unit=4), "addr_unit"),
        (Context(intervals=Intervals(goal=IntervalsGoal(access_bp=40))), "intervals.goal"),
        (Context(targets=tuple(Target(pid=p) for p in range(100, 101 + MAX_TARGETS))), "targets"),
        (Context(schemes=(Scheme(apply_interval_us=5),)), "schemes[0].apply_interval_us"),
        (Context(schemes=(Scheme(target_nid=1),)), "schemes[0].target_nid"),
        (Context(schemes=(Scheme(watermarks=Watermarks(high=1, mid=2)),)), "schemes[0].watermarks"),
    ],
)
def test_unsupported_fields_name_the_field(ctx: Context, field: str) -> None:
    problems = unsupported_fields(Kdamond(contexts=(ctx,)), Layout())
    assert any(p.startswith(f"contexts[0].{field}:") for p in problems), problems


def test_every_sysfs_only_field_is_refused_by_name() -> None:
    """Fields the debugfs files do not carry come from the sysfs schema: a file a new release
    brings is refused here without a line of its own."""
    ctx = Context(
        targets=(Target(pid=3, obsolete=True),),
        schemes=(
            Scheme(
                quota=Quota(goal_tuner="temporal", fail_charge_denom=2),
                dests=(Dest(1, 2),),
                max_nr_snapshots=3,
                filters=(Filter("addr", addr_start=0, addr_end=4096),),
            ),
        ),
    )
    problems = unsupported_fields(Kdamond(contexts=(ctx,)), Layout())
    fields = [p.split(":")[0] for p in problems]
    scheme = "contexts[0].schemes[0]"
    assert sorted(fields) == sorted(
        [
            f"{scheme}.filters",
            f"{scheme}.dests",
            "contexts[0].targets[0].obsolete",
            f"{scheme}.quota.goal_tuner",
            f"{scheme}.quota.fail_charge_denom",
            f"{scheme}.max_nr_snapshots",
        ]
    )
    assert all("sysfs only (Linux " in p for p in problems)
