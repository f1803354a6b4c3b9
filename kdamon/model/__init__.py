"""kdamon's data model: configuration input, monitoring results, units, files.

Imports nothing of kdamon but :mod:`kdamon.errors`.
"""

from typing import TYPE_CHECKING, Any

from kdamon.model.bounds import Bound, BoundKind, PatternBounds, Side, parse_bound, parse_bounds
from kdamon.model.config import (
    ACTIONS,
    CORE_FILTER_TYPES,
    FILTER_LAYERS,
    FILTER_TYPES,
    GOAL_TUNERS,
    INT_MAX,
    OPERATIONS,
    OPS_FILTER_TYPES,
    QUOTA_GOAL_METRICS,
    UINT_MAX,
    ULONG_MAX,
    WATERMARK_METRICS,
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
from kdamon.model.results import (
    IntervalsTune,
    RegionState,
    SchemeApply,
    SchemeStats,
    TriedRegion,
)
from kdamon.model.units import (
    Dialect,
    Unit,
    format_duration_ms,
    format_duration_us,
    format_ratio_bp,
    format_ratio_permil,
    format_size,
    format_value,
    parse_address,
    parse_count,
    parse_duration_ms,
    parse_duration_us,
    parse_range,
    parse_ratio_bp,
    parse_ratio_permil,
    parse_seconds_us,
    parse_size,
    parse_value,
)

if TYPE_CHECKING:
    from kdamon.model.serial import (
        DOCUMENT,
        FORMATS,
        Format,
        config_from_dict,
        config_to_dict,
        dump_config,
        load_config,
        load_config_file,
    )
    from kdamon.model.snapshot import REGION_DTYPE, RegionArray, Snapshot, regions_array

# Serialisation pulls in cattrs, PyYAML and tomli_w: loaded on first use only,
# so that commands that read no file (status, stop) start faster.
_SERIAL = frozenset(
    {
        "DOCUMENT",
        "FORMATS",
        "Format",
        "config_from_dict",
        "config_to_dict",
        "dump_config",
        "load_config",
        "load_config_file",
    }
)


# Snapshots hold numpy arrays: loaded on first use, so that commands that see no
# snapshot (start, stop, status) do not import numpy.
_SNAPSHOT = frozenset({"REGION_DTYPE", "RegionArray", "Snapshot", "regions_array"})


def __getattr__(name: str) -> Any:
    if name in _SERIAL:
        from kdamon.model import serial

        return getattr(serial, name)
    if name in _SNAPSHOT:
        from kdamon.model import snapshot

        return getattr(snapshot, name)
    raise AttributeError(f"module 'kdamon.model' has no attribute {name!r}")


__all__ = [
    "ACTIONS",
    "Bound",
    "BoundKind",
    "CORE_FILTER_TYPES",
    "DOCUMENT",
    "FILTER_LAYERS",
    "FILTER_TYPES",
    "FORMATS",
    "GOAL_TUNERS",
    "INT_MAX",
    "OPERATIONS",
    "OPS_FILTER_TYPES",
    "QUOTA_GOAL_METRICS",
    "UINT_MAX",
    "ULONG_MAX",
    "WATERMARK_METRICS",
    "AccessPattern",
    "Config",
    "Context",
    "Dialect",
    "Dest",
    "Filter",
    "Format",
    "Intervals",
    "IntervalsGoal",
    "IntervalsTune",
    "Kdamond",
    "NrRegions",
    "PatternBounds",
    "Quota",
    "QuotaGoal",
    "QuotaWeights",
    "REGION_DTYPE",
    "Region",
    "RegionArray",
    "RegionState",
    "Scheme",
    "SchemeApply",
    "Side",
    "SchemeStats",
    "Snapshot",
    "Target",
    "TriedRegion",
    "Unit",
    "Watermarks",
    "config_from_dict",
    "config_to_dict",
    "dump_config",
    "field_unit",
    "format_duration_ms",
    "format_duration_us",
    "format_ratio_bp",
    "format_ratio_permil",
    "format_size",
    "format_value",
    "join_path",
    "load_config",
    "load_config_file",
    "parse_address",
    "parse_bound",
    "parse_bounds",
    "parse_count",
    "parse_duration_ms",
    "parse_duration_us",
    "parse_range",
    "parse_ratio_bp",
    "parse_ratio_permil",
    "parse_seconds_us",
    "parse_size",
    "parse_value",
    "prefix_error",
    "regions_array",
]
