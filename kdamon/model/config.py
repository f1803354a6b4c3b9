"""The input side of the model: one frozen class per DAMON sysfs directory.

Every rule about valid input lives here, checked when an object is built.
A class checks its own fields and raises :class:`ConfigError` whose
``field`` is relative to itself (``min``); a container that checks a rule
involving its children names the child (``targets[0].pid``), and
:mod:`kdamon.model.serial` prefixes the path of each nesting level, so that
errors from a configuration file read like
``kdamonds[0].contexts[0].nr_regions.min``.

Field-name suffixes give units: ``_us`` microseconds, ``_ms`` milliseconds,
``_bp`` 1/10000, ``_permil`` 1/1000; sizes and addresses are bytes.  Fields
that accept human units in files carry it in their metadata
(:func:`field_unit`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import attrs

from kdamon.errors import ConfigError
from kdamon.model.units import Unit

__all__ = [
    "ACTIONS",
    "CORE_FILTER_TYPES",
    "FILTER_LAYERS",
    "FILTER_TYPES",
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
    "Dest",
    "Filter",
    "Intervals",
    "IntervalsGoal",
    "Kdamond",
    "NrRegions",
    "Quota",
    "QuotaGoal",
    "QuotaWeights",
    "Region",
    "Scheme",
    "Target",
    "Watermarks",
    "field_unit",
    "join_path",
    "prefix_error",
]

ULONG_MAX = 2**64 - 1
UINT_MAX = 2**32 - 1
INT_MAX = 2**31 - 1

OPERATIONS = ("vaddr", "fvaddr", "paddr")
ACTIONS = (
    "willneed",
    "cold",
    "pageout",
    "hugepage",
    "nohugepage",
    "lru_prio",
    "lru_deprio",
    "migrate_hot",
    "migrate_cold",
    "collapse",
    "stat",
)
CORE_FILTER_TYPES = ("addr", "target")
OPS_FILTER_TYPES = ("anon", "memcg", "young", "hugepage_size", "active", "unmapped")
FILTER_TYPES = OPS_FILTER_TYPES[:3] + CORE_FILTER_TYPES + OPS_FILTER_TYPES[3:]
FILTER_LAYERS = ("auto", "core", "ops")
QUOTA_GOAL_METRICS = (
    "user_input",
    "some_mem_psi_us",
    "node_mem_used_bp",
    "node_mem_free_bp",
    "node_memcg_used_bp",
    "node_memcg_free_bp",
    "active_mem_bp",
    "inactive_mem_bp",
    "node_eligible_mem_bp",
)
GOAL_TUNERS = ("consist", "temporal")
WATERMARK_METRICS = ("none", "free_mem_rate")

_UNIT_KEY = "kdamon.unit"
_Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


# -- error paths ---------------------------------------------------------


def join_path(prefix: str, field: str) -> str:
    """``join_path("targets[0]", "pid")`` -> ``"targets[0].pid"``; indexes attach directly."""
    if not prefix or not field:
        return prefix or field
    return f"{prefix}{field}" if field.startswith("[") else f"{prefix}.{field}"


def prefix_error(prefix: str, error: ConfigError) -> ConfigError:
    """The same error, seen from the container: its field path behind ``prefix``."""
    return ConfigError(join_path(prefix, error.field), error.message)


def field_unit(attribute: attrs.Attribute[Any]) -> Unit | None:
    """The human unit a field accepts in configuration files, if any."""
    unit: Unit | None = attribute.metadata.get(_UNIT_KEY)
    return unit


# -- validators and field helpers ----------------------------------------


def _int_between(low: int, high: int, what: str) -> _Validator:
    def check(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(attribute.name, f"expected an integer, got {value!r}")
        if not low <= value <= high:
            raise ConfigError(attribute.name, f"must be between {low} and {high} ({what}), got {value}")

    return check


def _optional_int_between(low: int, high: int, what: str) -> _Validator:
    check = _int_between(low, high, what)

    def check_optional(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None:
            check(inst, attribute, value)

    return check_optional


def _instance(kind: type, what: str) -> _Validator:
    def check(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, kind):
            raise ConfigError(attribute.name, f"expected {what}, got {value!r}")

    return check


def _one_of(choices: tuple[str, ...], *, optional: bool = False) -> _Validator:
    def check(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if optional and value is None:
            return
        if value not in choices:
            raise ConfigError(attribute.name, f"unknown value {value!r}; use one of {', '.join(choices)}")

    return check


def _items(kind: type) -> _Validator:
    def check(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        for index, item in enumerate(value):
            if not isinstance(item, kind):
                raise ConfigError(f"{attribute.name}[{index}]", f"expected a {kind.__name__}, got {item!r}")

    return check


def _as_tuple(value: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(value)


def _ulong(default: int = 0, unit: Unit | None = None) -> Any:
    return attrs.field(
        default=default, validator=_int_between(0, ULONG_MAX, "unsigned long"), metadata={_UNIT_KEY: unit}
    )


def _uint(default: int = 0, unit: Unit | None = None) -> Any:
    return attrs.field(default=default, validator=_int_between(0, UINT_MAX, "unsigned int"), metadata={_UNIT_KEY: unit})


def _bool(default: bool = False) -> Any:
    return attrs.field(default=default, validator=_instance(bool, "true or false"))


def _str(default: str = "") -> Any:
    return attrs.field(default=default, validator=_instance(str, "a string"))


def _single_line(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, str) and (any(c in value for c in "\n\r\0") or value != value.strip()):
        raise ConfigError(attribute.name, "must be one line without NUL or surrounding blanks (sysfs stores one line)")


def _path_str() -> Any:
    """A string written to a sysfs file as one value: a cgroup path."""
    return attrs.field(default="", validator=[_instance(str, "a string"), _single_line])


def _choice(default: str | None, choices: tuple[str, ...], *, optional: bool = False) -> Any:
    return attrs.field(default=default, validator=_one_of(choices, optional=optional))


def _nested(kind: type) -> Any:
    return attrs.field(factory=kind, validator=_instance(kind, f"a {kind.__name__}"))


# -- monitoring targets --------------------------------------------------


@attrs.frozen
class Region:
    """An initial monitoring region ``[start, end)`` in bytes (or ``addr_unit``)."""

    start: int = attrs.field(validator=_int_between(0, ULONG_MAX, "unsigned long"), metadata={_UNIT_KEY: "bytes"})
    end: int = attrs.field(validator=_int_between(0, ULONG_MAX, "unsigned long"), metadata={_UNIT_KEY: "bytes"})

    def __attrs_post_init__(self) -> None:
        if self.start >= self.end:
            raise ConfigError("end", f"must be greater than start ({self.start:#x}), got {self.end:#x}")


@attrs.frozen
class Target:
    """A monitoring target: a process (``pid``) or, for paddr, physical memory."""

    pid: int | None = attrs.field(default=None, validator=_optional_int_between(1, INT_MAX, "a process id"))
    regions: tuple[Region, ...] = attrs.field(default=(), converter=_as_tuple, validator=_items(Region))
    obsolete: bool = _bool()

    def __attrs_post_init__(self) -> None:
        for index in range(1, len(self.regions)):
            before, region = self.regions[index - 1], self.regions[index]
            if region.start < before.end:
                raise ConfigError(
                    f"regions[{index}].start",
                    f"{region.start:#x} is before the end of regions[{index - 1}] "
                    f"({before.end:#x}); sort the regions and remove overlaps",
                )

    def check_ops(self, ops: str) -> None:
        """Check the rules that depend on the context's operations set."""
        if ops == "paddr" and self.pid is not None:
            raise ConfigError("pid", "paddr monitors physical memory, not a process: remove the pid")
        if ops != "paddr" and self.pid is None:
            raise ConfigError("pid", f"{ops} targets are processes: give the pid to monitor")


# -- monitoring attributes -----------------------------------------------


@attrs.frozen
class IntervalsGoal:
    """Auto-tuning of the sampling interval (6.15+); ``aggrs == 0`` disables it."""

    access_bp: int = attrs.field(
        default=0, validator=_int_between(0, 10000, "1/10000 ratio"), metadata={_UNIT_KEY: "bp"}
    )
    aggrs: int = _ulong()
    min_sample_us: int = _ulong(unit="us")
    max_sample_us: int = _ulong(unit="us")

    def __attrs_post_init__(self) -> None:
        if self.aggrs and self.min_sample_us > self.max_sample_us:
            raise ConfigError(
                "max_sample_us", f"must be at least min_sample_us ({self.min_sample_us}) while aggrs is non-zero"
            )


@attrs.frozen
class Intervals:
    """Sampling, aggregation and ops-update intervals."""

    sample_us: int = _ulong(5000, "us")
    aggr_us: int = _ulong(100000, "us")
    update_us: int = _ulong(60000000, "us")
    goal: IntervalsGoal = _nested(IntervalsGoal)

    @property
    def max_nr_accesses(self) -> int:
        """The highest ``nr_accesses`` a region can reach in one aggregation (``aggr / sample``)."""
        return self.aggr_us // max(self.sample_us, 1)

    def __attrs_post_init__(self) -> None:
        if self.sample_us > self.aggr_us:
            raise ConfigError("sample_us", f"must not exceed aggr_us ({self.aggr_us})")
        goal = self.goal
        if goal.aggrs and not goal.min_sample_us <= self.sample_us <= goal.max_sample_us:
            raise ConfigError(
                "sample_us",
                f"must be within goal.min_sample_us.."
                f"goal.max_sample_us ({goal.min_sample_us}.."
                f"{goal.max_sample_us}) while goal.aggrs is non-zero",
            )


@attrs.frozen
class NrRegions:
    """Bounds on the number of monitoring regions."""

    min: int = _ulong(10)
    max: int = _ulong(1000)

    def __attrs_post_init__(self) -> None:
        if self.min < 3:
            raise ConfigError("min", f"must be at least 3 (DAMON's lower bound), got {self.min}")
        if self.min > self.max:
            raise ConfigError("max", f"must be at least min ({self.min}), got {self.max}")


# -- schemes -------------------------------------------------------------


@attrs.frozen
class AccessPattern:
    """Closed ranges a region must fall in for a scheme to act on it.

    kdamon's default matches every region (the kernel's matches none).
    ``nr_accesses`` counts sampling intervals per aggregation, ``age``
    aggregation intervals; an inverted range is allowed and matches nothing.
    """

    SZ_MAX: ClassVar[int] = ULONG_MAX
    NR_ACCESSES_MAX: ClassVar[int] = UINT_MAX
    AGE_MAX: ClassVar[int] = UINT_MAX

    sz_min: int = _ulong(unit="bytes")
    sz_max: int = _ulong(ULONG_MAX, "bytes")
    nr_accesses_min: int = _uint()
    nr_accesses_max: int = _uint(UINT_MAX)
    age_min: int = _uint()
    age_max: int = _uint(UINT_MAX)


@attrs.frozen
class QuotaGoal:
    """A quota auto-tuning goal: drive ``metric`` towards ``target_value``."""

    metric: str = _choice("user_input", QUOTA_GOAL_METRICS)
    target_value: int = _ulong()
    current_value: int = _ulong()
    nid: int = attrs.field(default=0, validator=_int_between(0, INT_MAX, "a NUMA node id"))
    path: str = _path_str()

    def __attrs_post_init__(self) -> None:
        if self.metric.startswith("node_memcg_") and not self.path:
            raise ConfigError(
                "path", f"{self.metric} needs the memory cgroup path (relative to the cgroup mount, e.g. '/workload')"
            )


@attrs.frozen
class QuotaWeights:
    """Prioritisation weights used when a quota limits a scheme."""

    sz_permil: int = _uint(unit="permil")
    nr_accesses_permil: int = _uint(unit="permil")
    age_permil: int = _uint(unit="permil")


@attrs.frozen
class Quota:
    """Time/size limits of a scheme per ``reset_interval_ms``, with goals."""

    ms: int = _ulong(unit="ms")
    bytes: int = _ulong(unit="bytes")
    reset_interval_ms: int = _ulong(unit="ms")
    weights: QuotaWeights = _nested(QuotaWeights)
    goals: tuple[QuotaGoal, ...] = attrs.field(default=(), converter=_as_tuple, validator=_items(QuotaGoal))
    goal_tuner: str | None = _choice(None, GOAL_TUNERS, optional=True)
    fail_charge_num: int = _uint()
    fail_charge_denom: int = _uint()


@attrs.frozen
class Watermarks:
    """Activate a scheme only while ``metric`` is between the watermarks (permil)."""

    metric: str = _choice("none", WATERMARK_METRICS)
    interval_us: int = _ulong(unit="us")
    high: int = _ulong(unit="permil")
    mid: int = _ulong(unit="permil")
    low: int = _ulong(unit="permil")

    def __attrs_post_init__(self) -> None:
        if self.metric == "none":
            return
        if self.high > 1000:
            raise ConfigError("high", f"must be at most 1000 (permil), got {self.high}")
        if self.mid > self.high:
            raise ConfigError("mid", f"must not exceed high ({self.high}), got {self.mid}")
        if self.low > self.mid:
            raise ConfigError("low", f"must not exceed mid ({self.mid}), got {self.low}")


@attrs.frozen
class Filter:
    """A DAMOS filter; fields other than the type's own are ignored.

    ``layer`` picks the sysfs directory: ``core`` (``core_filters/``),
    ``ops`` (``ops_filters/``) or ``auto`` (by type where the kernel has
    them, else ``filters/``).
    """

    type: str = attrs.field(validator=_one_of(FILTER_TYPES))
    matching: bool = _bool()
    allow: bool = _bool()
    memcg_path: str = _path_str()
    addr_start: int = _ulong(unit="bytes")
    addr_end: int = _ulong(unit="bytes")
    target_idx: int = attrs.field(default=0, validator=_int_between(0, INT_MAX, "a target index"))
    min: int = _ulong(unit="bytes")
    max: int = _ulong(unit="bytes")
    layer: str = _choice("auto", FILTER_LAYERS)

    def __attrs_post_init__(self) -> None:
        core = self.type in CORE_FILTER_TYPES
        if (self.layer == "core" and not core) or (self.layer == "ops" and core):
            proper = "core" if core else "ops"
            raise ConfigError(
                "layer", f"{self.type} filters belong to the {proper} layer: use layer '{proper}' or 'auto'"
            )
        if self.type == "addr" and self.addr_start >= self.addr_end:
            raise ConfigError(
                "addr_end", f"must be greater than addr_start ({self.addr_start:#x}), got {self.addr_end:#x}"
            )
        if self.type == "memcg" and not self.memcg_path:
            raise ConfigError(
                "memcg_path", "memcg filters need the cgroup path (relative to the cgroup mount, e.g. '/workload')"
            )
        if self.type == "hugepage_size" and self.min > self.max:
            raise ConfigError("max", f"must be at least min ({self.min}), got {self.max}")


@attrs.frozen
class Dest:
    """A migration destination node and its share (``dests/``, 6.17+)."""

    id: int = attrs.field(validator=_int_between(0, UINT_MAX, "unsigned int"))
    weight: int = attrs.field(validator=_int_between(0, UINT_MAX, "unsigned int"))


@attrs.frozen
class Scheme:
    """A DAMOS scheme: apply ``action`` to regions matching ``access_pattern``."""

    action: str = _choice("stat", ACTIONS)
    access_pattern: AccessPattern = _nested(AccessPattern)
    apply_interval_us: int = _ulong(unit="us")
    target_nid: int = attrs.field(default=-1, validator=_int_between(-1, INT_MAX, "a NUMA node id or -1"))
    quota: Quota = _nested(Quota)
    watermarks: Watermarks = _nested(Watermarks)
    filters: tuple[Filter, ...] = attrs.field(default=(), converter=_as_tuple, validator=_items(Filter))
    dests: tuple[Dest, ...] = attrs.field(default=(), converter=_as_tuple, validator=_items(Dest))
    max_nr_snapshots: int = _ulong()


# -- contexts and kdamonds -----------------------------------------------


@attrs.frozen
class Context:
    """A monitoring context: what to monitor, how, and the schemes to apply."""

    ops: str = _choice("vaddr", OPERATIONS)
    addr_unit: int = attrs.field(default=1, validator=_int_between(1, ULONG_MAX, "unsigned long, not 0"))
    pause: bool = _bool()
    intervals: Intervals = _nested(Intervals)
    nr_regions: NrRegions = _nested(NrRegions)
    targets: tuple[Target, ...] = attrs.field(default=(), converter=_as_tuple, validator=_items(Target))
    schemes: tuple[Scheme, ...] = attrs.field(default=(), converter=_as_tuple, validator=_items(Scheme))

    def __attrs_post_init__(self) -> None:
        if self.ops == "paddr" and len(self.targets) > 1:
            raise ConfigError("targets", f"paddr takes at most one target (physical memory), got {len(self.targets)}")
        for index, target in enumerate(self.targets):
            try:
                target.check_ops(self.ops)
            except ConfigError as error:
                raise prefix_error(f"targets[{index}]", error) from None

    @property
    def max_nr_accesses(self) -> int:
        """The highest ``nr_accesses`` a region can reach in one aggregation."""
        return self.intervals.max_nr_accesses


@attrs.frozen
class Kdamond:
    """One kdamond (a kernel thread); sysfs allows at most one context each."""

    contexts: tuple[Context, ...] = attrs.field(default=(), converter=_as_tuple, validator=_items(Context))
    refresh_ms: int = _uint(unit="ms")

    def __attrs_post_init__(self) -> None:
        if len(self.contexts) > 1:
            raise ConfigError(
                "contexts", f"a kdamond runs at most one context, got {len(self.contexts)}: use one kdamond per context"
            )


@attrs.frozen
class Config:
    """The top-level configuration document."""

    kdamonds: tuple[Kdamond, ...] = attrs.field(default=(), converter=_as_tuple, validator=_items(Kdamond))
