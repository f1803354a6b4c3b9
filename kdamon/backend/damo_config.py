"""The peer's (damo's) ``kdamonds`` JSON, turned into kdamon's :class:`Config`.

That document is what ``damo args damon --format json`` prints and
``damo start --kdamonds FILE`` reads: ``{"kdamonds": [...]}`` (or, from old
versions, the bare list).  Each kdamond has ``contexts``; each context
``ops``, ``targets`` (``pid``, ``regions``), ``intervals`` (``sample_us``,
``aggr_us``, ``ops_update_us``, ``intervals_goal``), ``nr_regions``
(``min``, ``max``) and ``schemes`` (``action``, ``access_pattern`` with
``sz_bytes``/``nr_accesses``/``age`` ranges, ``apply_interval_us``,
``quotas``, ``watermarks``, ``filters``, ``dests``, ``target_nid``).

Values come as numbers or as damo's human text: ``"5 ms"``, ``"1 m 30 s"``,
``"4.000 KiB"``, ``"1,024"``, ``"50 %"``, ``"max"``, ``"min"``;
``nr_accesses`` ranges in percent of the maximum (``"10 %"``) or in
``"N samples"``, ``age`` ranges as durations or ``"N aggr_intervals"``, and
a plain number means the field's own unit (microseconds for ``*_us``,
permil for ``*_permil``, percent for ``nr_accesses``, ...).  They are read by
:mod:`kdamon.model.units` and :mod:`kdamon.model.bounds` in damo's dialect,
with the rounding rules every other front end of kdamon follows.  Missing keys take damo's defaults (which
differ from kdamon's: ``ops_update_us`` is 1 s).  Output-only keys (``state``,
``pid``, ``stats``, ``tried_regions``, ``effective_sz_bytes``) and damo's
own extensions that mainline DAMON lacks (``ops_attrs``,
``sample_control``) are ignored; anything kdamon cannot express is a
:class:`ConfigError` naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from kdamon.errors import ConfigError
from kdamon.model import (
    AccessPattern,
    Bound,
    BoundKind,
    Config,
    Context,
    Dest,
    Filter,
    Intervals,
    IntervalsGoal,
    Kdamond,
    NrRegions,
    PatternBounds,
    Quota,
    QuotaGoal,
    QuotaWeights,
    Region,
    Scheme,
    Target,
    Watermarks,
    parse_bound,
    parse_count,
    parse_duration_ms,
    parse_duration_us,
    parse_ratio_bp,
    parse_ratio_permil,
    parse_size,
    prefix_error,
)

__all__ = ["config_from_damo", "load_damo_config", "looks_like_damo"]

_PSI_METRIC = "some_mem_psi_us"


def _int(value: Any, field: str) -> int:
    return parse_count(value, field, dialect="damo")


def _time_us(value: Any, field: str) -> int:
    return parse_duration_us(value, field, dialect="damo")


def _time_ms(value: Any, field: str) -> int:
    return parse_duration_ms(value, field, dialect="damo")


def _size(value: Any, field: str) -> int:
    return parse_size(value, field, dialect="damo")


def _bp(value: Any, field: str) -> int:
    return parse_ratio_bp(value, field, dialect="damo")


def _permil(value: Any, field: str) -> int:
    return parse_ratio_permil(value, field, dialect="damo")


def _bool(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).lower()
    if text in ("y", "yes", "true"):
        return True
    if text in ("n", "no", "false"):
        return False
    raise ConfigError(field, f"expected true or false, got {value!r}")


def _get(data: Mapping[str, Any], key: str, default: Any) -> Any:
    value = data.get(key)
    return default if value is None else value


def _mapping(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(field, f"expected a mapping, got {type(value).__name__}")
    return value


def _items(data: Mapping[str, Any], key: str, build: Callable[[Mapping[str, Any]], Any]) -> tuple[Any, ...]:
    """``build`` applied to each mapping of the list ``data[key]``, errors prefixed by its path."""
    values = _get(data, key, [])
    if not isinstance(values, list):
        raise ConfigError(key, f"expected a list, got {type(values).__name__}")
    out = []
    for index, value in enumerate(values):
        try:
            out.append(build(_mapping(value, "")))
        except ConfigError as error:
            raise prefix_error(f"{key}[{index}]", error) from None
        except KeyError as error:
            raise ConfigError(f"{key}[{index}].{error.args[0]}", "missing; damo's format requires this key") from None
    return tuple(out)


def _nested(path: str, build: Callable[[], Any]) -> Any:
    try:
        return build()
    except ConfigError as error:
        raise prefix_error(path, error) from None


# -- contexts --------------------------------------------------------------


def _intervals(data: Mapping[str, Any]) -> Intervals:
    goal = _mapping(_get(data, "intervals_goal", {}), "intervals_goal")
    return Intervals(
        sample_us=_time_us(_get(data, "sample_us", "5 ms"), "sample_us"),
        aggr_us=_time_us(_get(data, "aggr_us", "100 ms"), "aggr_us"),
        update_us=_time_us(_get(data, "ops_update_us", "1 s"), "ops_update_us"),
        goal=IntervalsGoal(
            access_bp=_bp(_get(goal, "access_bp", 0), "intervals_goal.access_bp"),
            aggrs=_int(_get(goal, "aggrs", 0), "intervals_goal.aggrs"),
            min_sample_us=_time_us(_get(goal, "min_sample_us", 0), "intervals_goal.min_sample_us"),
            max_sample_us=_time_us(_get(goal, "max_sample_us", 0), "intervals_goal.max_sample_us"),
        ),
    )


def _target(data: Mapping[str, Any], ops: str) -> Target:
    pid = data.get("pid")
    regions = _items(data, "regions", lambda r: Region(_int(r["start"], "start"), _int(r["end"], "end")))
    return Target(
        pid=None if ops == "paddr" or pid is None else _int(pid, "pid"),
        regions=regions,
        obsolete=_bool(_get(data, "obsolete", False), "obsolete"),
    )


def _context(data: Mapping[str, Any]) -> Context:
    ops = str(_get(data, "ops", "paddr"))
    if _get(data, "probes", []):
        raise ConfigError("probes", "kdamon does not configure access probes (Linux 7.3): remove them")
    intervals = _nested("intervals", lambda: _intervals(_mapping(_get(data, "intervals", {}), "")))
    nr_regions = _mapping(_get(data, "nr_regions", {}), "nr_regions")
    return Context(
        ops=ops,
        addr_unit=_size(_get(data, "addr_unit", 1), "addr_unit"),
        pause=_bool(_get(data, "pause", False), "pause"),
        intervals=intervals,
        nr_regions=_nested(
            "nr_regions",
            lambda: NrRegions(_int(_get(nr_regions, "min", 10), "min"), _int(_get(nr_regions, "max", 1000), "max")),
        ),
        targets=_items(data, "targets", lambda t: _target(t, ops)),
        schemes=_items(data, "schemes", lambda s: _scheme(s, intervals)),
    )


# -- schemes -----------------------------------------------------------------


def _access_pattern(data: Mapping[str, Any], intervals: Intervals) -> AccessPattern:
    def bounds(key: str, kind: BoundKind) -> tuple[Bound, Bound]:
        rng = _mapping(_get(data, key, {}), key)
        low, high = (
            parse_bound(_get(rng, side, side), kind, f"{key}.{side}", dialect="damo") for side in ("min", "max")
        )
        return low, high

    return PatternBounds(
        sz=bounds("sz_bytes", "sz"), nr_accesses=bounds("nr_accesses", "nr_accesses"), age=bounds("age", "age")
    ).resolve(intervals)


def _goal(data: Mapping[str, Any]) -> QuotaGoal:
    metric = str(_get(data, "metric", "user_input"))
    if _bool(_get(data, "complement", False), "complement"):
        raise ConfigError("complement", "kdamon has no complemented quota goals: remove 'complement'")

    def value(key: str) -> int:
        raw = _get(data, key, 0)
        if metric == _PSI_METRIC:
            return _time_us(raw, key)
        return _bp(raw, key) if metric.endswith("_bp") else _int(raw, key)

    return QuotaGoal(
        metric=metric,
        target_value=value("target_value"),
        current_value=value("current_value"),
        nid=_int(_get(data, "nid", 0), "nid"),
        path=str(_get(data, "memcg_path", "")),
    )


def _quota(data: Mapping[str, Any]) -> Quota:
    weights = _mapping(_get(data, "weights", {}), "weights")
    tuner = data.get("goal_tuner")
    return Quota(
        ms=_time_ms(_get(data, "time_ms", 0), "time_ms"),
        bytes=_size(_get(data, "sz_bytes", 0), "sz_bytes"),
        reset_interval_ms=_time_ms(_get(data, "reset_interval_ms", "max"), "reset_interval_ms"),
        weights=QuotaWeights(
            *(_permil(_get(weights, k, 0), f"weights.{k}") for k in ("sz_permil", "nr_accesses_permil", "age_permil"))
        ),
        goals=_items(data, "goals", _goal),
        goal_tuner=None if tuner in (None, "consist") else str(tuner),
        fail_charge_num=_int(_get(data, "fail_charge_num", 0), "fail_charge_num"),
        fail_charge_denom=_int(_get(data, "fail_charge_denom", 0), "fail_charge_denom"),
    )


def _watermarks(data: Mapping[str, Any]) -> Watermarks:
    return Watermarks(
        metric=str(_get(data, "metric", "none")),
        interval_us=_time_us(_get(data, "interval_us", 0), "interval_us"),
        high=_permil(_get(data, "high_permil", 0), "high_permil"),
        mid=_permil(_get(data, "mid_permil", 0), "mid_permil"),
        low=_permil(_get(data, "low_permil", 0), "low_permil"),
    )


def _filter(data: Mapping[str, Any]) -> Filter:
    kind = str(data.get("filter_type"))
    allow = _get(data, "allow", _get(data, "filter_pass", False))
    fields: dict[str, Any] = {
        "type": kind,
        "matching": _bool(_get(data, "matching", False), "matching"),
        "allow": _bool(allow, "allow"),
    }
    if kind == "memcg":
        fields["memcg_path"] = str(_get(data, "memcg_path", ""))
    elif kind == "addr":
        rng = _mapping(_get(data, "address_range", {}), "address_range")
        fields["addr_start"] = _int(_get(rng, "start", 0), "address_range.start")
        fields["addr_end"] = _int(_get(rng, "end", 0), "address_range.end")
    elif kind == "target":
        fields["target_idx"] = _int(_get(data, "damon_target_idx", 0), "damon_target_idx")
    elif kind == "hugepage_size":
        low, high = _get(data, "hugepage_size", [0, 0])
        fields["min"], fields["max"] = _size(low, "hugepage_size[0]"), _size(high, "hugepage_size[1]")
    return Filter(**fields)


def _scheme(data: Mapping[str, Any], intervals: Intervals) -> Scheme:
    nid = data.get("target_nid")
    return Scheme(
        action=str(_get(data, "action", "stat")),
        access_pattern=_nested(
            "access_pattern", lambda: _access_pattern(_mapping(_get(data, "access_pattern", {}), ""), intervals)
        ),
        apply_interval_us=_time_us(_get(data, "apply_interval_us", 0), "apply_interval_us"),
        target_nid=-1 if nid is None else _int(nid, "target_nid"),
        quota=_nested("quotas", lambda: _quota(_mapping(_get(data, "quotas", {}), ""))),
        watermarks=_nested("watermarks", lambda: _watermarks(_mapping(_get(data, "watermarks", {}), ""))),
        filters=_items(data, "filters", _filter),
        dests=_items(data, "dests", lambda d: Dest(_int(d["id"], "id"), _int(d["weight"], "weight"))),
    )


# -- documents ---------------------------------------------------------------


def _kdamond(data: Mapping[str, Any]) -> Kdamond:
    return Kdamond(
        contexts=_items(data, "contexts", _context), refresh_ms=_time_ms(_get(data, "refresh_ms", 0), "refresh_ms")
    )


def _kdamond_list(document: Any) -> list[Any]:
    if isinstance(document, Mapping):
        document = document.get("kdamonds")
    if not isinstance(document, list):
        raise ConfigError("kdamonds", 'expected damo\'s {"kdamonds": [...]} document')
    return document


def config_from_damo(document: Any) -> Config:
    """kdamon's Config for a parsed damo ``kdamonds`` document."""
    return Config(_items({"kdamonds": _kdamond_list(document)}, "kdamonds", _kdamond))


def load_damo_config(text: str) -> Config:
    """Parse damo's ``kdamonds`` JSON text."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError("<document>", f"not valid JSON: {error}") from None
    return config_from_damo(document)


def looks_like_damo(document: Any) -> bool:
    """Whether a parsed document is in damo's layout rather than kdamon's.

    damo's kdamonds carry ``state``/``pid``, its intervals ``ops_update_us``,
    its schemes ``quotas`` or ``access_pattern.sz_bytes``; kdamon's never do.
    """
    try:
        kdamonds = _kdamond_list(document)
    except ConfigError:
        return False
    for kdamond in kdamonds:
        if not isinstance(kdamond, Mapping):
            continue
        if "state" in kdamond or "pid" in kdamond:
            return True
        for ctx in kdamond.get("contexts") or ():
            if not isinstance(ctx, Mapping):
                continue
            if "ops_update_us" in (ctx.get("intervals") or {}):
                return True
            for scheme in ctx.get("schemes") or ():
                if isinstance(scheme, Mapping) and (
                    "quotas" in scheme or "sz_bytes" in (scheme.get("access_pattern") or {})
                ):
                    return True
    return isinstance(document, list)
