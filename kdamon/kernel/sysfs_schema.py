"""DAMON's sysfs tree, declared once: every directory and file, the model field each file holds,
its default, the release it appeared in and its errno hints.

This is the one place that knows the tree.  Derived from it: the writes that stage a
configuration (``sysfs_plan``), reading a directory back into the model and its results
(``sysfs_read``), feature evidence and state keywords (``sysfs_features``), the error hints
(``sysfs_errors``) and the tree ``kdamon check`` expects of each release (``check/abi.py``).
A sysfs file a new release brings is one :class:`File` below plus, if kdamon configures it,
its model field (README, "Contributor notes").

Paths in the comments are relative to ``/sys/kernel/mm/damon/admin``; ``N`` is a numbered
directory.  Sources: ``mm/damon/sysfs*.c`` of 6.1, 6.12, 7.2 and 7.3 (``damon-abi.md``).
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import Any

from kdamon.kernel.sysfs_nodes import BASE, Codec, Dir, File, Keyword, Only
from kdamon.model import (
    CORE_FILTER_TYPES,
    QUOTA_GOAL_METRICS,
    UINT_MAX,
    Context,
    Dest,
    Filter,
    Kdamond,
    QuotaGoal,
    Region,
    Scheme,
    Target,
    TriedRegion,
)

__all__ = [
    "ADMIN",
    "KDAMOND",
    "ON_EINVAL_CAUSES",
    "SCHEME",
    "STATE",
    "STATS",
    "TRIED_REGION",
    "TRIED_REGIONS",
    "filter_dir",
]


def filter_dir(flt: Filter, layered: bool) -> str:
    """The directory of a filter: by type on kernels with layer directories (6.15+)."""
    if not layered:
        return "filters"
    return "core_filters" if flt.type in CORE_FILTER_TYPES else "ops_filters"


def _in(name: str) -> Callable[[Any, bool], bool]:
    return lambda flt, layered: filter_dir(flt, layered) == name


def _none_is(default: str) -> Codec:
    """A model field whose None means the kernel's default (an unset goal tuner)."""
    return Codec(
        write=lambda value: default if value is None else value,
        read=lambda value, _scope: None if value == default else value,
    )


# The kernel keeps nr_accesses and age as unsigned int: larger values are truncated.
_UINT = Codec(write=lambda value: value, read=lambda value, _scope: int(value) & UINT_MAX)
# paddr ignores pid_target: its target has no pid in the model.
_PID = Codec(
    write=lambda pid: 0 if pid is None else pid,
    read=lambda value, scope: None if scope.get("ops") == "paddr" else value,
)


def _ints(*names: str, prefix: str = "", since: str = BASE, **kw: Any) -> tuple[File, ...]:
    """Integer files whose model field is ``prefix`` + their name."""
    return tuple(File(name, since, field=f"{prefix}{name}", **kw) for name in names)


def _results(*names: str, since: str = BASE) -> tuple[File, ...]:
    """Read-only files the kernel fills, each a field of a result type."""
    return tuple(File(name, since, writable=False, result=name) for name in names)


def _count(name: str, **kw: Any) -> File:
    return File(name, kind="count", **kw)


ON_EINVAL_CAUSES = (
    "nr_contexts is not 1",
    "the operations set is not built into this kernel (see avail_operations)",
    "nr_regions min < 3 or min > max",
    "sample_us > aggr_us",
    "an inconsistent intervals_goal (aggrs != 0 needs min_sample_us <= sample_us <= max_sample_us)",
    "paddr with more than one target",
    "a vaddr/fvaddr target pid that does not exist (pids resolve in the writer's pid namespace)",
    "a region with start >= end, overlapping or unsorted regions, or one smaller than a page",
    "an addr filter with addr_end < addr_start or a hugepage_size filter with min > max",
    "a memcg_path/goal path that names no cgroup",
    "an addr_unit that makes the minimum region size not a power of two",
)
"""Why the kernel refuses ``on`` or ``commit`` with EINVAL (6.12 to 7.3)."""

_REJECTED = (
    (
        errno.EINVAL,
        "the kernel rejected the configuration at '{written}'. Likely causes: " + "; ".join(ON_EINVAL_CAUSES),
    ),
)

# kdamonds/N/state: the keywords (§3 of damon-abi.md), with what a failed write means.
STATE = File(
    "state",
    default="off",
    kind="state",
    volatile=True,
    keywords=(
        Keyword("on", hints=_REJECTED),
        Keyword(
            "off",
            hints=(
                (errno.EINVAL, "the kdamond was never started; there is nothing to stop"),
                (errno.EPERM, "the kdamond already exited (all its targets ended); there is nothing to stop"),
            ),
        ),
        Keyword("update_schemes_stats"),
        Keyword("commit", "5.19", ("context/avail_operations",), hints=_REJECTED),
        Keyword("update_schemes_tried_regions", "6.2", ("scheme/tried_regions",)),
        Keyword("clear_schemes_tried_regions", "6.2", ("scheme/tried_regions",)),
        Keyword("update_schemes_tried_bytes", "6.6", ("scheme/tried_regions", "tried_regions/total_bytes")),
        Keyword("commit_schemes_quota_goals", "6.8", ("quotas/goals",)),
        Keyword("update_schemes_effective_quotas", "6.9", ("quotas/effective_bytes",)),
        Keyword("update_tuned_intervals", "6.15", ("intervals/intervals_goal",)),
    ),
    hints=(
        (
            errno.EINVAL,
            "'{written}' needs a running kdamond with nr_contexts == 1, and a kernel that knows "
            "the keyword; check the state and start it first",
        ),
        (
            errno.ECANCELED,
            "'{written}' was cancelled: the kdamond exited, every scheme is deactivated by "
            "its watermarks, the context is paused, or there are no schemes",
        ),
    ),
)

# .../schemes/N/{filters,core_filters,ops_filters}/N/: a filter's own files depend on its type.
FILTER = Dir(
    "N",
    kind="filter",
    model=Filter,
    children=(
        File(
            "type",
            "6.3",
            field="type",
            default="anon",
            kind="keyword",
            hints=(
                (
                    errno.EINVAL,
                    "'{written}' is not a keyword this kernel accepts for {name} "
                    "(or the filter type does not belong to this filter layer)",
                ),
            ),
        ),
        File("matching", "6.3", field="matching", default=False, kind="bool"),
        File("allow", "6.14", field="allow", default=False, kind="bool"),
        File("memcg_path", "6.3", field="memcg_path", default="", kind="text", only=Only("type", ("memcg",))),
        *_ints("addr_start", "addr_end", since="6.6", only=Only("type", ("addr",))),
        File("damon_target_idx", "6.6", field="target_idx", only=Only("type", ("target",))),
        *_ints("min", "max", since="6.15", only=Only("type", ("hugepage_size",))),
    ),
)


def _filters(name: str, since: str) -> Dir:
    return Dir(name, since=since, count=_count("nr_filters"), field="filters", items=FILTER, select=_in(name))


# .../schemes/N/quotas/goals/N/
GOAL = Dir(
    "N",
    kind="goal",
    model=QuotaGoal,
    children=(
        File("target_metric", "6.9", field="metric", default="user_input", kind="keyword"),
        *_ints("target_value", "current_value", since="6.8"),
        File("nid", "6.16", field="nid"),
        File(
            "path",
            "6.19",
            field="path",
            default="",
            kind="text",
            only=Only("metric", tuple(m for m in QUOTA_GOAL_METRICS if m.startswith("node_memcg_"))),
        ),
    ),
)

# .../schemes/N/stats/: the counters the kernel copies on update_schemes_stats (or refresh_ms).
STATS = Dir(
    "stats",
    kind="stats",
    volatile=True,
    children=(
        *_results("nr_tried", "sz_tried", "nr_applied", "sz_applied", "qt_exceeds"),
        *_results("sz_ops_filter_passed", since="6.14"),
        *_results("nr_snapshots", since="7.0"),
        File("max_nr_snapshots", "7.0", field="max_nr_snapshots"),
    ),
)

# .../schemes/N/tried_regions/N/: made by the kernel on update_schemes_tried_regions.
TRIED_REGION = Dir(
    "N",
    model=TriedRegion,
    children=(
        *_results("start", "end", "nr_accesses", "age", since="6.2"),
        *_results("sz_filter_passed", since="6.14"),
        Dir("probes", since="7.3", items=Dir("N", children=(File("hits", writable=False),))),
    ),
)
TRIED_REGIONS = Dir(
    "tried_regions",
    since="6.2",
    kind="tried_regions",
    volatile=True,
    items=TRIED_REGION,
    children=_results("total_bytes", since="6.6"),
)

# kdamonds/N/contexts/N/schemes/N/
SCHEME = Dir(
    "N",
    kind="scheme",
    model=Scheme,
    children=(
        File("action", field="action", default="stat", kind="keyword"),
        File("apply_interval_us", "6.7", field="apply_interval_us"),
        File("target_nid", "6.11", field="target_nid", default=-1),
        Dir(
            "access_pattern",
            children=(
                Dir(
                    "sz",
                    children=(File("min", field="access_pattern.sz_min"), File("max", field="access_pattern.sz_max")),
                ),
                *(
                    Dir(
                        name,
                        children=(
                            File("min", field=f"access_pattern.{name}_min", codec=_UINT),
                            File("max", field=f"access_pattern.{name}_max", codec=_UINT),
                        ),
                    )
                    for name in ("nr_accesses", "age")
                ),
            ),
        ),
        Dir(
            "quotas",
            kind="quotas",
            children=(
                *_ints("ms", "bytes", "reset_interval_ms", prefix="quota."),
                File("effective_bytes", "6.9", writable=False, volatile=True, result="effective_bytes"),
                File(
                    "goal_tuner",
                    "7.1",
                    field="quota.goal_tuner",
                    default="consist",
                    kind="keyword",
                    codec=_none_is("consist"),
                ),
                *_ints("fail_charge_num", "fail_charge_denom", prefix="quota.", since="7.2"),
                Dir(
                    "weights", children=_ints("sz_permil", "nr_accesses_permil", "age_permil", prefix="quota.weights.")
                ),
                Dir("goals", since="6.8", count=_count("nr_goals"), field="quota.goals", items=GOAL),
            ),
        ),
        Dir(
            "watermarks",
            children=(
                File("metric", field="watermarks.metric", default="none", kind="keyword"),
                *_ints("interval_us", "high", "mid", "low", prefix="watermarks."),
            ),
        ),
        # Read back in this order: core filters, then ops filters, then the deprecated directory.
        _filters("core_filters", "6.15"),
        _filters("ops_filters", "6.15"),
        _filters("filters", "6.3"),
        Dir(
            "dests",
            since="6.17",
            count=_count("nr_dests"),
            field="dests",
            items=Dir("N", model=Dest, children=_ints("id", "weight")),
        ),
        STATS,
        TRIED_REGIONS,
    ),
)

# kdamonds/N/contexts/N/monitoring_attrs/probes/ (7.3): data-attribute probes kdamon does not use.
PROBES = Dir(
    "probes",
    since="7.3",
    count=_count("nr_probes"),
    items=Dir(
        "N",
        children=(
            File("weight"),
            Dir(
                "filters",
                count=_count("nr_filters"),
                items=Dir(
                    "N",
                    children=(
                        File("type", default="anon", kind="keyword"),
                        File("matching", default=False, kind="bool"),
                        File("allow", default=False, kind="bool"),
                        File("path", default="", kind="text"),
                    ),
                ),
            ),
        ),
    ),
)

# kdamonds/N/contexts/N/
CONTEXT = Dir(
    "N",
    kind="context",
    model=Context,
    children=(
        File("avail_operations", "5.19", default="", kind="list", writable=False, volatile=True),
        File("operations", field="ops", default="vaddr", kind="keyword"),
        File(
            "addr_unit", "6.18", field="addr_unit", default=1, hints=((errno.EINVAL, "addr_unit must be at least 1"),)
        ),
        File("pause", "7.2", field="pause", default=False, kind="bool"),
        Dir(
            "monitoring_attrs",
            kind="monitoring_attrs",
            children=(
                Dir(
                    "intervals",
                    kind="intervals",
                    children=(
                        # The kernel writes tuned intervals back (update_tuned_intervals, refresh_ms).
                        File("sample_us", field="intervals.sample_us", default=5000, volatile=True),
                        File("aggr_us", field="intervals.aggr_us", default=100000, volatile=True),
                        File("update_us", field="intervals.update_us", default=60000000),
                        Dir(
                            "intervals_goal",
                            since="6.15",
                            children=_ints(
                                "access_bp", "aggrs", "min_sample_us", "max_sample_us", prefix="intervals.goal."
                            ),
                        ),
                    ),
                ),
                Dir(
                    "nr_regions",
                    children=(
                        File("min", field="nr_regions.min", default=10),
                        File("max", field="nr_regions.max", default=1000),
                    ),
                ),
                PROBES,
            ),
        ),
        Dir(
            "targets",
            count=_count("nr_targets"),
            field="targets",
            items=Dir(
                "N",
                kind="target",
                model=Target,
                children=(
                    File("pid_target", field="pid", codec=_PID),
                    File("obsolete_target", "6.19", field="obsolete", default=False, kind="bool"),
                    Dir(
                        "regions",
                        count=_count("nr_regions"),
                        field="regions",
                        items=Dir("N", model=Region, children=_ints("start", "end")),
                    ),
                ),
            ),
        ),
        Dir("schemes", count=_count("nr_schemes"), field="schemes", items=SCHEME),
    ),
)

# kdamonds/N/
KDAMOND = Dir(
    "N",
    kind="kdamond",
    model=Kdamond,
    children=(
        STATE,
        File("pid", default=-1, writable=False, volatile=True),
        File("refresh_ms", "6.17", field="refresh_ms"),
        Dir(
            "contexts",
            count=_count("nr_contexts", hints=((errno.EINVAL, "nr_contexts accepts only 0 or 1"),)),
            field="contexts",
            items=CONTEXT,
        ),
    ),
)

ADMIN = Dir("kdamonds", count=_count("nr_kdamonds"), items=KDAMOND)
"""``kdamonds/``: the root of the tree."""
