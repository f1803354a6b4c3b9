"""The compact DAMOS scheme syntax of ``--scheme``.

A scheme is ``KEY=VALUE`` pairs separated by commas, e.g.::

    action=pageout,sz=4K-max,nr_accesses=0-0,age=5s-max

========================  ==============================================================
``action=NAME``           the DAMOS action (default ``stat``)
``sz=MIN-MAX``            region size: ``4K``, ``2MiB``, a byte count, ``min``, ``max``
``nr_accesses=MIN-MAX``   accesses per aggregation: a count of sampling intervals, or a
                          percentage of the maximum (``0%-10%``)
``age=MIN-MAX``           age: a count of aggregation intervals, or a duration (``5s``)
                          divided by the aggregation interval
``apply_interval=DUR``    how often the scheme is applied (default: every aggregation)
``quota_time=DUR``        time quota per reset interval (milliseconds or more)
``quota_size=SIZE``       size quota per reset interval
``quota_reset=DUR``       the quotas' reset interval
``quota_weights=S:A:G``   prioritisation weights of size, access rate and age (permil or %)
``wmarks=M:INT:H:MID:L``  watermarks: metric (``free_mem_rate``), check interval, high,
                          mid and low thresholds (permil or %)
``target_nid=N``          the destination NUMA node of ``migrate_hot``/``migrate_cold``
``filter=[allow|reject:][!]TYPE[:ARG]``
                          a filter (repeatable): ``reject:anon``, ``allow:!young``,
                          ``reject:memcg:/workload``, ``reject:addr:0x1000-0x2000``,
                          ``allow:target:1``, ``reject:hugepage_size:2M-2M``; ``!``
                          matches memory *not* of the type; the verb defaults to reject
========================  ==============================================================

Any range bound may be ``min`` or ``max``; omitted ranges match everything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from kdamon.errors import ConfigError
from kdamon.model import (
    ACTIONS,
    UINT_MAX,
    ULONG_MAX,
    AccessPattern,
    Filter,
    Intervals,
    Quota,
    QuotaWeights,
    Scheme,
    Watermarks,
    parse_duration_ms,
    parse_access_bound,
    parse_duration_us,
    parse_ratio_permil,
    parse_size,
)

__all__ = ["SchemeSpec", "parse_scheme"]

_Resolver = Callable[[Intervals], int]
_KEYS = ("action", "sz", "nr_accesses", "age", "apply_interval", "quota_time", "quota_size", "quota_reset",
         "quota_weights", "wmarks", "target_nid", "filter")


def _bound(text: str, high: int, parse: Callable[[str], _Resolver]) -> _Resolver:
    text = text.strip()
    if text == "min":
        return lambda _iv: 0
    if text == "max":
        return lambda _iv: high
    return parse(text)


def _range(value: str, field: str, high: int, parse: Callable[[str], _Resolver]) -> tuple[_Resolver, _Resolver]:
    low_text, sep, high_text = value.partition("-")
    if not sep:
        raise ConfigError(field, f"expected MIN-MAX, got {value!r}")
    return _bound(low_text, high, parse), _bound(high_text, high, parse)


def _size(field: str) -> Callable[[str], _Resolver]:
    def parse(text: str) -> _Resolver:
        size = parse_size(text, field)
        return lambda _iv: size
    return parse


def _accesses(field: str) -> Callable[[str], _Resolver]:
    def parse(text: str) -> _Resolver:
        bound = parse_access_bound(text, field)
        return lambda iv: bound.resolve(iv.max_nr_accesses)
    return parse


def _age(field: str) -> Callable[[str], _Resolver]:
    def parse(text: str) -> _Resolver:
        if text.isdigit():
            count = int(text)
            return lambda _iv: count
        us = parse_duration_us(text, field)
        return lambda iv: us // max(iv.aggr_us, 1)
    return parse


def _count(text: str, field: str) -> int:
    if not text.isdigit():
        raise ConfigError(field, f"expected a whole number, got {text!r}")
    return int(text)


def _parts(value: str, field: str, count: int, example: str) -> list[str]:
    parts = value.split(":")
    if len(parts) != count:
        raise ConfigError(field, f"expected {example}, got {value!r}")
    return parts


def _filter(value: str) -> Filter:
    field = "filter"
    verb, _, rest = value.partition(":")
    if verb not in ("allow", "reject"):
        verb, rest = "reject", value
    matching = not rest.startswith("!")
    kind, _, arg = rest.lstrip("!").partition(":")
    fields: dict[str, Any] = {"type": kind, "matching": matching, "allow": verb == "allow"}
    if kind == "memcg":
        fields["memcg_path"] = arg
    elif kind == "addr":
        start, _, end = arg.partition("-")
        fields["addr_start"], fields["addr_end"] = (_address(start, field), _address(end, field))
    elif kind == "target":
        fields["target_idx"] = _count(arg, field)
    elif kind == "hugepage_size":
        low, _, high = arg.partition("-")
        fields["min"], fields["max"] = parse_size(low, field), parse_size(high, field)
    elif arg:
        raise ConfigError(field, f"{kind} filters take no argument, got {arg!r}")
    try:
        return Filter(**fields)
    except ConfigError as error:
        raise ConfigError(field, f"{value!r}: {error}") from None


def _address(text: str, field: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        return parse_size(text, field)


@attrs.frozen
class SchemeSpec:
    """A parsed ``--scheme``; ``resolve`` turns it into a Scheme once the
    context's intervals are known (percent and duration bounds need them)."""

    text: str
    action: str
    sz: tuple[_Resolver, _Resolver] | None
    nr_accesses: tuple[_Resolver, _Resolver] | None
    age: tuple[_Resolver, _Resolver] | None
    scheme: Scheme  # every field that needs no intervals

    def resolve(self, intervals: Intervals) -> Scheme:
        pattern: dict[str, int] = {}
        for name, bounds in (("sz", self.sz), ("nr_accesses", self.nr_accesses), ("age", self.age)):
            if bounds is not None:
                pattern[f"{name}_min"], pattern[f"{name}_max"] = (b(intervals) for b in bounds)
        try:
            return attrs.evolve(self.scheme, access_pattern=AccessPattern(**pattern))
        except ConfigError as error:
            raise ConfigError("--scheme", f"{self.text!r}: {error}") from None


def parse_scheme(text: str) -> SchemeSpec:
    """Parse one ``--scheme`` value (see the module docstring)."""
    values: dict[str, str] = {}
    filters: list[Filter] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or key not in _KEYS:
            raise ConfigError("--scheme", f"{item!r} in {text!r}: use KEY=VALUE with KEY among {', '.join(_KEYS)}")
        if key == "filter":
            filters.append(_filter(value))
        elif key in values:
            raise ConfigError("--scheme", f"{key} is given twice in {text!r}")
        else:
            values[key] = value
    action = values.get("action", "stat")
    if action not in ACTIONS:
        raise ConfigError("--scheme", f"unknown action {action!r}; use one of {', '.join(ACTIONS)}")
    try:
        scheme = Scheme(
            action=action,
            apply_interval_us=parse_duration_us(values.get("apply_interval", 0), "apply_interval"),
            target_nid=int(values.get("target_nid", -1)),
            quota=_quota(values),
            watermarks=_watermarks(values.get("wmarks")),
            filters=tuple(filters),
        )
    except (ConfigError, ValueError) as error:
        raise ConfigError("--scheme", f"{text!r}: {error}") from None

    def bounds(key: str, high: int, parse: Callable[[str], Callable[[str], _Resolver]]) -> tuple[_Resolver, _Resolver] | None:
        return _range(values[key], key, high, parse(key)) if key in values else None

    return SchemeSpec(text, action, bounds("sz", ULONG_MAX, _size), bounds("nr_accesses", UINT_MAX, _accesses),
                      bounds("age", UINT_MAX, _age), scheme)


def _quota(values: dict[str, str]) -> Quota:
    weights = QuotaWeights()
    if "quota_weights" in values:
        sz, acc, age = _parts(values["quota_weights"], "quota_weights", 3, "SIZE:ACCESSES:AGE weights")
        weights = QuotaWeights(*(parse_ratio_permil(w, "quota_weights") for w in (sz, acc, age)))
    return Quota(
        ms=parse_duration_ms(values.get("quota_time", 0), "quota_time"),
        bytes=parse_size(values.get("quota_size", 0), "quota_size"),
        reset_interval_ms=parse_duration_ms(values.get("quota_reset", 0), "quota_reset"),
        weights=weights,
    )


def _watermarks(value: str | None) -> Watermarks:
    if value is None:
        return Watermarks()
    metric, interval, high, mid, low = _parts(value, "wmarks", 5, "METRIC:INTERVAL:HIGH:MID:LOW")
    return Watermarks(metric=metric, interval_us=parse_duration_us(interval, "wmarks"),
                      high=parse_ratio_permil(high, "wmarks"), mid=parse_ratio_permil(mid, "wmarks"),
                      low=parse_ratio_permil(low, "wmarks"))
