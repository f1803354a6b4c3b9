"""The compact DAMOS scheme syntax of ``--scheme``.

A scheme is ``KEY=VALUE`` pairs separated by commas, e.g.::

    action=pageout,sz=4K-max,nr_accesses=0-0,age=5s-max

The keys and their values are described where ``--help`` shows them, in
:mod:`kdamon.cli.kdamond_options`.  Any range bound may be ``min`` or ``max``;
omitted ranges match everything.  Percentages and durations become the counts
inside the range (a lower bound rounds up, an upper one down; see
:mod:`kdamon.model.bounds`).
"""

from __future__ import annotations

from typing import Any

import attrs

from kdamon.errors import ConfigError
from kdamon.model import (
    ACTIONS,
    Dest,
    Filter,
    Intervals,
    PatternBounds,
    Quota,
    QuotaGoal,
    QuotaWeights,
    Scheme,
    Watermarks,
    parse_address,
    parse_bounds,
    parse_count,
    parse_duration_ms,
    parse_duration_us,
    parse_ratio_bp,
    parse_ratio_permil,
    parse_size,
)

__all__ = ["SchemeSpec", "parse_scheme"]

_KEYS = (
    "action",
    "sz",
    "nr_accesses",
    "age",
    "apply_interval",
    "quota_time",
    "quota_size",
    "quota_reset",
    "quota_weights",
    "quota_goal",
    "quota_goal_tuner",
    "wmarks",
    "target_nid",
    "dest",
    "filter",
)
_REPEATABLE = ("filter", "quota_goal", "dest")


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
        fields["addr_start"], fields["addr_end"] = parse_address(start, field), parse_address(end, field)
    elif kind == "target":
        fields["target_idx"] = parse_count(arg, field)
    elif kind == "hugepage_size":
        low, _, high = arg.partition("-")
        fields["min"], fields["max"] = parse_size(low, field), parse_size(high, field)
    elif arg:
        raise ConfigError(field, f"{kind} filters take no argument, got {arg!r}")
    try:
        return Filter(**fields)
    except ConfigError as error:
        raise ConfigError(field, f"{value!r}: {error}") from None


@attrs.frozen
class SchemeSpec:
    """A parsed ``--scheme``; ``resolve`` turns it into a Scheme once the
    context's intervals are known (percent and duration bounds need them)."""

    text: str
    action: str
    pattern: PatternBounds
    scheme: Scheme  # every field that needs no intervals

    def resolve(self, intervals: Intervals) -> Scheme:
        try:
            return attrs.evolve(self.scheme, access_pattern=self.pattern.resolve(intervals))
        except ConfigError as error:
            raise ConfigError("--scheme", f"{self.text!r}: {error}") from None


def parse_scheme(text: str) -> SchemeSpec:
    """Parse one ``--scheme`` value (see the module docstring)."""
    values: dict[str, str] = {}
    repeated: dict[str, list[str]] = {key: [] for key in _REPEATABLE}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or key not in _KEYS:
            raise ConfigError("--scheme", f"{item!r} in {text!r}: use KEY=VALUE with KEY among {', '.join(_KEYS)}")
        if key in repeated:
            repeated[key].append(value)
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
            quota=_quota(values, repeated["quota_goal"]),
            watermarks=_watermarks(values.get("wmarks")),
            filters=tuple(_filter(value) for value in repeated["filter"]),
            dests=tuple(_dest(value) for value in repeated["dest"]),
        )
    except (ConfigError, ValueError) as error:
        raise ConfigError("--scheme", f"{text!r}: {error}") from None

    try:
        pattern = PatternBounds(
            **{key: parse_bounds(values[key], key, key) for key in ("sz", "nr_accesses", "age") if key in values}
        )
    except ConfigError as error:
        raise ConfigError("--scheme", f"{text!r}: {error}") from None
    return SchemeSpec(text, action, pattern, scheme)


def _goal(value: str) -> QuotaGoal:
    """``METRIC:TARGET[:NID]``; ``node_memcg_*``: ``METRIC:TARGET:NID:MEMCG``; ``user_input:TARGET[:CURRENT]``."""
    metric, _, rest = value.partition(":")
    target, _, where = rest.partition(":")
    if not target:
        raise ConfigError("quota_goal", f"expected METRIC:TARGET[:NID|MEMCG], got {value!r}")
    if metric.endswith("_us"):
        target_value = parse_duration_us(target, "quota_goal")
    elif metric.endswith("_bp"):
        target_value = parse_ratio_bp(target, "quota_goal")
    else:
        target_value = parse_count(target, "quota_goal")
    fields: dict[str, Any] = {"metric": metric, "target_value": target_value}
    if metric.startswith("node_memcg_"):
        nid, _, path = where.partition(":")
        fields["nid"], fields["path"] = parse_count(nid, "quota_goal"), path
    elif metric.startswith("node_"):
        fields["nid"] = parse_count(where or "0", "quota_goal")
    elif metric == "user_input":
        fields["current_value"] = parse_count(where or "0", "quota_goal")  # what the user measured, updated by tune
    elif where:
        raise ConfigError("quota_goal", f"{metric} takes no node or cgroup, got {value!r}")
    return QuotaGoal(**fields)


def _dest(value: str) -> Dest:
    nid, weight = _parts(value, "dest", 2, "NID:WEIGHT")
    return Dest(parse_count(nid, "dest"), parse_count(weight, "dest"))


def _quota(values: dict[str, str], goals: list[str]) -> Quota:
    weights = QuotaWeights()
    if "quota_weights" in values:
        sz, acc, age = _parts(values["quota_weights"], "quota_weights", 3, "SIZE:ACCESSES:AGE weights")
        weights = QuotaWeights(*(parse_ratio_permil(w, "quota_weights") for w in (sz, acc, age)))
    return Quota(
        ms=parse_duration_ms(values.get("quota_time", 0), "quota_time"),
        bytes=parse_size(values.get("quota_size", 0), "quota_size"),
        reset_interval_ms=parse_duration_ms(values.get("quota_reset", 0), "quota_reset"),
        weights=weights,
        goals=tuple(_goal(value) for value in goals),
        goal_tuner=values.get("quota_goal_tuner"),
    )


def _watermarks(value: str | None) -> Watermarks:
    if value is None:
        return Watermarks()
    metric, interval, high, mid, low = _parts(value, "wmarks", 5, "METRIC:INTERVAL:HIGH:MID:LOW")
    return Watermarks(
        metric=metric,
        interval_us=parse_duration_us(interval, "wmarks"),
        high=parse_ratio_permil(high, "wmarks"),
        mid=parse_ratio_permil(mid, "wmarks"),
        low=parse_ratio_permil(low, "wmarks"),
    )
