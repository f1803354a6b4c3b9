"""Access-pattern bounds: the closed-range rule against the intervals, both dialects."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kdamon.errors import ConfigError
from kdamon.model import UINT_MAX, ULONG_MAX, AccessPattern, Intervals, PatternBounds, parse_bound, parse_bounds

FAST = Intervals(sample_us=3000, aggr_us=100_000)  # at most 33 accesses per aggregation


def _pattern(**ranges: str) -> AccessPattern:
    return PatternBounds(**{kind: parse_bounds(text, kind) for kind, text in ranges.items()}).resolve(FAST)  # type: ignore[arg-type]


def test_percent_bounds_keep_the_counts_inside_the_range() -> None:
    p = _pattern(nr_accesses="0%-3%")
    assert (p.nr_accesses_min, p.nr_accesses_max) == (0, 0)  # 1 of 33 is 3.03 %, above 3 %
    p = _pattern(nr_accesses="3%-100%")
    assert (p.nr_accesses_min, p.nr_accesses_max) == (1, 33)
    p = _pattern(nr_accesses="3%-3%")
    assert (p.nr_accesses_min, p.nr_accesses_max) == (1, 0)  # no count is exactly 3 %: matches nothing
    p = _pattern(nr_accesses="12.5%-min")
    assert (p.nr_accesses_min, p.nr_accesses_max) == (5, 0)


def test_duration_bounds_never_admit_a_younger_region() -> None:
    slow = Intervals(sample_us=5000, aggr_us=3_000_000)
    p = PatternBounds(age=parse_bounds("5s-5s", "age")).resolve(slow)
    assert (p.age_min, p.age_max) == (2, 1)
    p = PatternBounds(age=parse_bounds("5s-max", "age")).resolve(slow)
    assert (p.age_min, p.age_max) == (2, UINT_MAX)
    p = _pattern(age="1.5us-7")
    assert (p.age_min, p.age_max) == (1, 7)


def test_counts_keywords_and_saturation() -> None:
    p = _pattern(sz="4KiB-max", nr_accesses="2 samples-max", age="min-3 aggr_intervals")
    assert p == AccessPattern(4096, ULONG_MAX, 2, UINT_MAX, 0, 3)
    assert _pattern(age="1000000d-max").age_min == UINT_MAX  # beyond 32 bits: the largest age
    huge = Intervals(sample_us=1, aggr_us=ULONG_MAX)
    assert PatternBounds(nr_accesses=parse_bounds("50%-100%", "nr_accesses")).resolve(huge).nr_accesses_max == UINT_MAX


def test_plain_numbers_differ_by_dialect() -> None:
    assert parse_bound("10", "nr_accesses") == parse_bound("10 samples", "nr_accesses")
    assert parse_bound("10", "nr_accesses", dialect="damo") == parse_bound("10%", "nr_accesses")
    assert parse_bound(10, "nr_accesses", dialect="damo") == parse_bound("10 %", "nr_accesses", dialect="damo")
    assert parse_bound("7", "age").resolve("min", max_nr_accesses=20, aggr_us=100_000) == 7
    assert parse_bound("7", "age", dialect="damo").resolve("min", max_nr_accesses=20, aggr_us=100_000) == 1  # 7 us
    assert parse_bound("1,000 samples", "nr_accesses", dialect="damo") == parse_bound("1000", "nr_accesses")


@pytest.mark.parametrize(
    ("text", "kind", "fragment"),
    [
        ("x", "nr_accesses", "a percentage like '10%'"),
        ("5ms", "nr_accesses", "a percentage like '10%'"),
        ("2.5 samples", "nr_accesses", "not a whole number"),
        ("5 parsecs", "age", "unknown unit 'parsecs'"),
        ("4KB", "sz", "ambiguous"),
        ("-5%", "nr_accesses", "like '50%'"),
    ],
)
def test_bad_bounds(text: str, kind: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_bound(text, kind, "r.min")  # type: ignore[arg-type]
    assert info.value.field == "r.min"
    assert fragment in info.value.message


_percent = st.integers(0, 100_000).map(lambda n: Fraction(n, 1000))  # 0 % to 100 % by 0.001 %


@settings(max_examples=300)
@given(sample_us=st.integers(1, 10**6), ratio=st.integers(1, 10**4), low=_percent, high=_percent)
def test_resolved_share_range_is_exactly_the_counts_inside(
    sample_us: int, ratio: int, low: Fraction, high: Fraction
) -> None:
    """n is in the resolved [min, max] if and only if low <= n / max_nr_accesses <= high."""
    intervals = Intervals(sample_us=sample_us, aggr_us=sample_us * ratio + sample_us // 2)
    top = intervals.max_nr_accesses
    text = f"{_percent_text(low)}%-{_percent_text(high)}%"
    p = PatternBounds(nr_accesses=parse_bounds(text, "nr_accesses")).resolve(intervals)
    for n in {0, 1, top, top - 1, p.nr_accesses_min - 1, p.nr_accesses_min, p.nr_accesses_max, p.nr_accesses_max + 1}:
        if 0 <= n <= top:
            inside = low <= Fraction(n, top) * 100 <= high
            assert inside == (p.nr_accesses_min <= n <= p.nr_accesses_max), (n, top, text, p)


@settings(max_examples=300)
@given(aggr_us=st.integers(1, 10**8), low_us=st.integers(0, 10**10), high_us=st.integers(0, 10**10))
def test_resolved_age_range_is_exactly_the_ages_inside(aggr_us: int, low_us: int, high_us: int) -> None:
    """age a is in the resolved [min, max] if and only if low <= a * aggr <= high (below the
    32-bit ceiling, which also stands for every larger bound)."""
    intervals = Intervals(sample_us=1, aggr_us=aggr_us)
    p = PatternBounds(age=parse_bounds(f"{low_us}us-{high_us}us", "age")).resolve(intervals)
    for age in {0, p.age_min - 1, p.age_min, p.age_max, p.age_max + 1}:
        if 0 <= age < UINT_MAX:
            assert (low_us <= age * aggr_us <= high_us) == (p.age_min <= age <= p.age_max)


def _percent_text(share: Fraction) -> str:
    whole, rest = divmod(share.numerator * 1000 // share.denominator, 1000)
    return f"{whole}.{rest:03d}"
