"""Every front end of kdamon's notation resolves a scheme the same way.

For generated intervals and scheme values, written in each front end's own
notation, the kdamond options (``--sample``, ``--aggr``, ``--scheme``),
kdamon's configuration file in JSON, YAML and TOML, and the peer's
``kdamonds`` JSON give the same Scheme, whose fields that need no intervals
are the values written (``tests/model/test_model_bounds.py`` checks that the
percentage and duration bounds hold exactly the counts inside the range).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import attrs
import tomli_w
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from kdamon.backend.damo_config import load_damo_config
from kdamon.cli.kdamond_options import add_kdamond_options, build_kdamond
from kdamon.model import UINT_MAX, ULONG_MAX, Intervals, Scheme, load_config

# -- values, and how each notation writes them --------------------------------

_DECIMAL_TIME = (("us", 1), ("ms", 10**3), ("s", 10**6))
_WHOLE_TIME = (("m", 60 * 10**6), ("h", 3600 * 10**6), ("d", 86400 * 10**6))
_SIZE = (("B", 1), ("KiB", 2**10), ("K", 2**10), ("MiB", 2**20), ("G", 2**30), ("TiB", 2**40), ("EiB", 2**60))


def _decimal(numerator: Fraction | int, unit: int = 1, *, grouped: bool = False) -> str:
    """``numerator / unit`` as an exact decimal (the unit has no prime factors but 2 and 5)."""
    value = Fraction(numerator) / unit
    whole, rest = divmod(value.numerator, value.denominator)
    digits = ""
    while rest:
        rest *= 10
        digits += str(rest // value.denominator)
        rest %= value.denominator
    text = f"{whole:,}" if grouped else str(whole)
    return f"{text}.{digits}" if digits else text


@attrs.frozen
class Written:
    """One value in kdamon's notation and in damo's."""

    kdamon: str
    damo: Any


@st.composite
def durations(draw: st.DrawFn, us: Fraction, plain_us: int = 1) -> Written:
    """``us`` microseconds: ``1.5ms``; damo's ``"1 m 30.5 s"``, or a plain number of the field's
    unit (``plain_us`` microseconds)."""
    whole = [(n, f) for n, f in _WHOLE_TIME if us % f == 0 and us]
    name, factor = draw(st.sampled_from(list(_DECIMAL_TIME) + whole))
    kdamon = f"{_decimal(us, factor)}{name}"
    if us % plain_us == 0 and draw(st.booleans()):
        plain = us / plain_us
        return Written(kdamon, draw(st.sampled_from([int(plain), _decimal(plain, grouped=True)])))
    terms, rest = [], us
    for big, big_factor in reversed(_WHOLE_TIME):
        if draw(st.booleans()) and rest >= big_factor:
            count = rest // big_factor
            terms.append(f"{count:,} {big}")
            rest -= count * big_factor
    name, factor = draw(st.sampled_from(_DECIMAL_TIME))
    terms.append(f"{_decimal(rest, factor, grouped=True)} {name}")
    return Written(kdamon, " ".join(terms))


@st.composite
def sizes(draw: st.DrawFn, nbytes: int) -> Written:
    name, factor = draw(st.sampled_from(_SIZE))
    blank = draw(st.sampled_from(["", " "]))
    return Written(f"{_decimal(nbytes, factor)}{blank}{name}", f"{_decimal(nbytes, factor, grouped=True)} {name}")


@st.composite
def permils(draw: st.DrawFn, permil: int) -> Written:
    if draw(st.booleans()):
        return Written(str(permil), permil)
    return Written(f"{_decimal(permil, 10)}%", f"{_decimal(permil, 10)} %")


# -- the three access-pattern ranges ------------------------------------------


@st.composite
def size_bounds(draw: st.DrawFn) -> Written:
    choice = draw(st.sampled_from(["min", "max", "value"]))
    if choice != "value":
        return Written(choice, choice)
    return draw(sizes(draw(st.integers(0, ULONG_MAX))))


@st.composite
def counted_bounds(draw: st.DrawFn, suffix: str, relative: st.SearchStrategy[Written]) -> Written:
    """``min``, ``max``, a count (``7``, ``7 samples``) or a value relative to the intervals."""
    choice = draw(st.sampled_from(["min", "max", "count", "relative", "relative", "relative"]))
    if choice in ("min", "max"):
        return Written(choice, choice)
    if choice == "count":
        count = draw(st.integers(0, UINT_MAX))
        return Written(draw(st.sampled_from([str(count), f"{count} {suffix}"])), f"{count:,} {suffix}")
    return draw(relative)


@st.composite
def percents(draw: st.DrawFn) -> Written:
    thousandths = draw(st.one_of(st.integers(0, 100).map(lambda n: n * 1000), st.integers(0, 100_000)))
    percent = _decimal(Fraction(thousandths, 1000))  # 0 % to 100 % by 0.001 %
    return Written(f"{percent}%", draw(st.sampled_from([f"{percent} %", percent])))


_ages = st.one_of(st.integers(0, 10**13), st.integers(0, 1000 * ULONG_MAX)).flatmap(
    lambda ns: durations(Fraction(ns, 1000))
)
access_bounds = counted_bounds("samples", percents())
age_bounds = counted_bounds("aggr_intervals", _ages)


@attrs.frozen
class Case:
    sample: Written
    aggr: Written
    ranges: dict[str, tuple[Written, Written]]  # sz, nr_accesses, age
    scalars: dict[str, Written]  # apply_interval, quota_time, quota_size, quota_reset, weights, watermarks
    intervals: Intervals
    expected: dict[str, Any]  # what the scalars must become


@st.composite
def cases(draw: st.DrawFn) -> Case:
    # Round intervals and percentages too, where a bound lands exactly on a count.
    sample_us = draw(st.one_of(st.sampled_from([1000, 3000, 5000, 10_000]), st.integers(0, 10**6)))
    aggr_us = draw(
        st.one_of(st.integers(1, 1000).map(lambda n: n * max(sample_us, 1)), st.integers(max(sample_us, 1), 10**8))
    )
    apply_us = draw(st.integers(0, ULONG_MAX))
    quota_ms, reset_ms = draw(st.integers(0, ULONG_MAX // 1000)), draw(st.integers(0, ULONG_MAX // 1000))
    quota_bytes = draw(st.integers(0, ULONG_MAX))
    weights = [draw(st.integers(0, 1000)) for _ in range(3)]
    low, mid, high = sorted(draw(st.integers(0, 1000)) for _ in range(3))
    wmark_us = draw(st.integers(0, 10**10))
    scalars = {
        "apply_interval": draw(durations(Fraction(apply_us))),
        "quota_time": draw(durations(Fraction(quota_ms * 1000), 1000)),
        "quota_reset": draw(durations(Fraction(reset_ms * 1000), 1000)),
        "quota_size": draw(sizes(quota_bytes)),
        "wmark_interval": draw(durations(Fraction(wmark_us))),
        **{f"weight_{i}": draw(permils(w)) for i, w in enumerate(weights)},
        **{f"wmark_{name}": draw(permils(v)) for name, v in (("high", high), ("mid", mid), ("low", low))},
    }
    expected = {
        "apply_interval_us": apply_us,
        "quota_ms": quota_ms,
        "quota_reset_ms": reset_ms,
        "quota_bytes": quota_bytes,
        "wmark_interval_us": wmark_us,
        "weights": weights,
        "wmarks": [high, mid, low],
    }
    return Case(
        sample=draw(durations(Fraction(sample_us))),
        aggr=draw(durations(Fraction(aggr_us))),
        ranges={
            "sz": (draw(size_bounds()), draw(size_bounds())),
            "nr_accesses": (draw(access_bounds), draw(access_bounds)),
            "age": (draw(age_bounds), draw(age_bounds)),
        },
        scalars=scalars,
        intervals=Intervals(sample_us=sample_us, aggr_us=aggr_us),
        expected=expected,
    )


# -- the front ends -------------------------------------------------------------


def _weights(case: Case, dialect: str) -> list[Any]:
    return [getattr(case.scalars[f"weight_{i}"], dialect) for i in range(3)]


def _by_options(case: Case) -> Scheme:
    s = {key: w.kdamon for key, w in case.scalars.items()}
    spec = ",".join(
        [
            *(f"{key}={low.kdamon}-{high.kdamon}" for key, (low, high) in case.ranges.items()),
            f"apply_interval={s['apply_interval']}",
            f"quota_time={s['quota_time']}",
            f"quota_size={s['quota_size']}",
            f"quota_reset={s['quota_reset']}",
            f"quota_weights={':'.join(_weights(case, 'kdamon'))}",
            f"wmarks=free_mem_rate:{s['wmark_interval']}:{s['wmark_high']}:{s['wmark_mid']}:{s['wmark_low']}",
        ]
    )
    parser = argparse.ArgumentParser()
    add_kdamond_options(parser)
    args = parser.parse_args(
        [
            "--ops",
            "paddr",
            "--regions",
            "0x1000-0x100000",
            "--sample",
            case.sample.kdamon,
            "--aggr",
            case.aggr.kdamon,
            "--scheme",
            spec,
        ]
    )
    [scheme] = build_kdamond(args).contexts[0].schemes
    return scheme


def _kdamon_document(case: Case) -> dict[str, Any]:
    s = {key: w.kdamon for key, w in case.scalars.items()}
    pattern = {
        f"{key}_{side}": bound.kdamon
        for key, bounds in case.ranges.items()
        for side, bound in zip(("min", "max"), bounds, strict=True)
    }
    scheme = {
        "access_pattern": pattern,
        "apply_interval_us": s["apply_interval"],
        "quota": {
            "ms": s["quota_time"],
            "bytes": s["quota_size"],
            "reset_interval_ms": s["quota_reset"],
            "weights": dict(
                zip(("sz_permil", "nr_accesses_permil", "age_permil"), _weights(case, "kdamon"), strict=True)
            ),
        },
        "watermarks": {
            "metric": "free_mem_rate",
            "interval_us": s["wmark_interval"],
            "high": s["wmark_high"],
            "mid": s["wmark_mid"],
            "low": s["wmark_low"],
        },
    }
    return {
        "kdamonds": [
            {
                "contexts": [
                    {
                        "ops": "paddr",
                        "targets": [{"regions": [{"start": 4096, "end": 2**20}]}],
                        "intervals": {"sample_us": case.sample.kdamon, "aggr_us": case.aggr.kdamon},
                        "schemes": [scheme],
                    }
                ]
            }
        ]
    }


def _damo_document(case: Case) -> dict[str, Any]:
    s = {key: w.damo for key, w in case.scalars.items()}
    names = {"sz": "sz_bytes", "nr_accesses": "nr_accesses", "age": "age"}
    scheme = {
        "action": "stat",
        "access_pattern": {names[key]: {"min": low.damo, "max": high.damo} for key, (low, high) in case.ranges.items()},
        "apply_interval_us": s["apply_interval"],
        "quotas": {
            "time_ms": s["quota_time"],
            "sz_bytes": s["quota_size"],
            "reset_interval_ms": s["quota_reset"],
            "weights": dict(
                zip(("sz_permil", "nr_accesses_permil", "age_permil"), _weights(case, "damo"), strict=True)
            ),
        },
        "watermarks": {
            "metric": "free_mem_rate",
            "interval_us": s["wmark_interval"],
            "high_permil": s["wmark_high"],
            "mid_permil": s["wmark_mid"],
            "low_permil": s["wmark_low"],
        },
    }
    return {
        "kdamonds": [
            {
                "state": "off",
                "contexts": [
                    {
                        "ops": "paddr",
                        "targets": [{"pid": None, "regions": [{"start": "4,096", "end": "1,048,576"}]}],
                        "intervals": {"sample_us": case.sample.damo, "aggr_us": case.aggr.damo, "ops_update_us": "1 s"},
                        "schemes": [scheme],
                    }
                ],
            }
        ]
    }


_DUMPS: dict[str, Callable[[dict[str, Any]], str]] = {"json": json.dumps, "yaml": yaml.safe_dump, "toml": tomli_w.dumps}


@settings(max_examples=400, deadline=None)
@given(case=cases())
def test_front_ends_resolve_the_same_scheme(case: Case) -> None:
    by_options = _by_options(case)
    for fmt, dumps in _DUMPS.items():
        [[by_file]] = [c.schemes for c in load_config(dumps(_kdamon_document(case)), fmt).kdamonds[0].contexts]
        assert by_file == by_options, fmt
    [by_damo] = load_damo_config(json.dumps(_damo_document(case))).kdamonds[0].contexts[0].schemes
    assert by_damo == by_options

    expected = case.expected
    assert by_options.apply_interval_us == expected["apply_interval_us"]
    quota = by_options.quota
    assert (quota.ms, quota.reset_interval_ms, quota.bytes) == (
        expected["quota_ms"],
        expected["quota_reset_ms"],
        expected["quota_bytes"],
    )
    assert [quota.weights.sz_permil, quota.weights.nr_accesses_permil, quota.weights.age_permil] == expected["weights"]
    wm = by_options.watermarks
    assert (wm.interval_us, [wm.high, wm.mid, wm.low]) == (expected["wmark_interval_us"], expected["wmarks"])


def test_the_case_of_the_issue() -> None:
    """3 % at 3 ms sampling and 100 ms aggregation: 0 through --scheme, 1 through the peer's JSON, once."""
    case = Case(
        sample=Written("3ms", "3 ms"),
        aggr=Written("100ms", "100 ms"),
        ranges={"nr_accesses": (Written("0%", "0 %"), Written("3%", "3 %"))},
        scalars={
            "apply_interval": Written("0us", 0),
            "quota_time": Written("0us", 0),
            "quota_reset": Written("0us", 0),
            "quota_size": Written("0B", "0 B"),
            "wmark_interval": Written("0us", 0),
            **{f"weight_{i}": Written("0", 0) for i in range(3)},
            **{f"wmark_{n}": Written("0", 0) for n in ("high", "mid", "low")},
        },
        intervals=Intervals(sample_us=3000, aggr_us=100_000),
        expected={},
    )
    schemes = [_by_options(case), load_damo_config(json.dumps(_damo_document(case))).kdamonds[0].contexts[0].schemes[0]]
    assert {(s.access_pattern.nr_accesses_min, s.access_pattern.nr_accesses_max) for s in schemes} == {(0, 0)}
