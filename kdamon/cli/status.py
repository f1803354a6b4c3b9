"""``kdamon status``: every kdamond on this machine, read without writing anything.

kdamon's own kdamonds and everyone else's (other tools', DAMON modules')
are listed, the latter marked ``foreign``.  Scheme stats are shown as the
kernel last published them: asking for a refresh is a write
(``update_schemes_stats``) that takes DAMON's lock, which only ``--refresh``
does, and only to kdamon's own running kdamonds.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from kdamon.cli import common

if TYPE_CHECKING:
    from kdamon.backend.types import KdamondStatus, Refreshed
    from kdamon.model import Context, Scheme, SchemeStats


def register(sub: Any) -> None:
    status = sub.add_parser(
        "status",
        help="list every kdamond (kdamon's and foreign ones); writes nothing",
        description="List every kdamond: kernel DAMON's (sysfs and DAMON modules) and "
        "kdamon's engine daemons, with ops, intervals, targets, schemes and "
        "stats. Foreign kdamonds are marked. Reads only, unless --refresh.",
    )
    common.add_json_option(status, "one document, a list of kdamonds")
    status.add_argument(
        "--refresh",
        action="store_true",
        help="first ask kdamon's own running kdamonds for fresh scheme stats, tried regions, "
        "effective quotas and tuned intervals (state writes to them only; other tools' "
        "kdamonds are never asked)",
    )
    status.set_defaults(handler=_status)


def _range(low: int, high: int, top: int, fmt: Any = str) -> str:
    return f"{fmt(low)}..{'max' if high >= top else fmt(high)}"


def _scheme_line(scheme: Scheme, aggr_us: int) -> str:
    """One scheme; its ages (counted in aggregation intervals) also as durations at ``aggr_us``."""
    from kdamon.model import format_duration_us, format_size

    def age(value: int) -> str:
        return format_duration_us(value * aggr_us, approx=True)

    p = scheme.access_pattern
    words = [
        scheme.action,
        f"sz {_range(p.sz_min, p.sz_max, p.SZ_MAX, lambda v: format_size(v, approx=True))}",
        f"nr_accesses {_range(p.nr_accesses_min, p.nr_accesses_max, p.NR_ACCESSES_MAX)}",
        f"age {_range(p.age_min, p.age_max, p.AGE_MAX)} aggregations ({_range(p.age_min, p.age_max, p.AGE_MAX, age)})",
    ]
    if scheme.apply_interval_us:
        words.append(f"every {format_duration_us(scheme.apply_interval_us, approx=True)}")
    q = scheme.quota
    if q.ms or q.bytes:
        words.append(f"quota {q.ms}ms/{format_size(q.bytes, approx=True)} per {q.reset_interval_ms}ms")
    if scheme.watermarks.metric != "none":
        w = scheme.watermarks
        words.append(f"watermarks {w.metric} {w.high}/{w.mid}/{w.low} permil")
    if scheme.filters:
        words.append(f"{len(scheme.filters)} filter(s)")
    return "  ".join(words)


def _known(value: int | None, fmt: Any = str) -> str:
    """``value`` formatted, or ``-`` for a counter the kernel does not report."""
    return "-" if value is None else str(fmt(value))


def _stats_line(stats: SchemeStats) -> str:
    from kdamon.model import format_size

    def size(value: int) -> str:
        return format_size(value, approx=True)

    return (
        f"tried {stats.nr_tried} ({size(stats.sz_tried)}), "
        f"applied {_known(stats.nr_applied)} ({_known(stats.sz_applied, size)}), "
        f"quota exceeded {_known(stats.qt_exceeds)}"
    )


def _context_lines(context: Context) -> list[str]:
    from kdamon.model import format_duration_us

    iv = context.intervals
    lines = [
        f"{context.ops}: sample {format_duration_us(iv.sample_us, approx=True)}, "
        f"aggr {format_duration_us(iv.aggr_us, approx=True)}, "
        f"update {format_duration_us(iv.update_us, approx=True)}; "
        f"regions {context.nr_regions.min}..{context.nr_regions.max}"
    ]
    for index, target in enumerate(context.targets):
        what = f"pid {target.pid}" if target.pid is not None else "physical memory"
        regions = ", ".join(f"{r.start:#x}-{r.end:#x}" for r in target.regions)
        lines.append(f"target {index}: {what}" + (f" ({regions})" if regions else ""))
    return lines


def _refreshed_lines(refreshed: Refreshed, index: int) -> list[str]:
    from kdamon.model import format_size

    lines = []
    if index < len(refreshed.effective_quota_bytes) and refreshed.effective_quota_bytes[index] is not None:
        quota = refreshed.effective_quota_bytes[index]
        lines.append(f"effective size quota now: {format_size(quota, approx=True) if quota else 'none'}")
    tried = refreshed.tried[index] if index < len(refreshed.tried) else None
    if tried is not None:
        lines.append(f"tried at its last application: {tried[0]} regions ({format_size(tried[1], approx=True)})")
    return lines


def format_status(status: KdamondStatus) -> list[str]:
    """The lines ``kdamon status`` prints for one kdamond."""
    state = "on" if status.running else "off"
    pid = f"pid {status.pid}" if status.pid else "no pid"
    from kdamon.model import format_duration_us

    lines = [f"{status.id!s:18} {status.owner:8} {state:4} {pid}"]
    body: list[str] = []
    context = status.kdamond.contexts[0] if status.kdamond is not None and status.kdamond.contexts else None
    if context is not None:
        body += _context_lines(context)
        refreshed = status.refreshed
        if refreshed is not None and refreshed.tuned_intervals is not None:
            sample_us, aggr_us = refreshed.tuned_intervals
            body.append(
                f"tuned intervals now: sample {format_duration_us(sample_us, approx=True)}, "
                f"aggr {format_duration_us(aggr_us, approx=True)}"
            )
        for index, scheme in enumerate(context.schemes):
            body.append(f"scheme {index}: {_scheme_line(scheme, context.intervals.aggr_us)}")
            if index < len(status.stats):
                body.append(f"    {_stats_line(status.stats[index])}")
            if refreshed is not None:
                body.extend(f"    {line}" for line in _refreshed_lines(refreshed, index))
        if refreshed is not None:
            body.extend(f"note: {note}" for note in refreshed.notes)
    if status.note:
        body.append(f"note: {status.note}")
    return lines + [f"    {line}" for line in body]


def status_json(status: KdamondStatus) -> dict[str, Any]:
    import attrs

    from kdamon.model import Config, config_to_dict

    config = None
    if status.kdamond is not None:
        config = config_to_dict(Config((status.kdamond,)))["kdamonds"][0]
    return {
        "id": str(status.id),
        "backend": status.id.backend,
        "owner": status.owner,
        "state": "on" if status.running else "off",
        "pid": status.pid,
        "config": config,
        "stats": [attrs.asdict(s) for s in status.stats],
        "note": status.note,
        "refreshed": attrs.asdict(status.refreshed) if status.refreshed is not None else None,
    }


def _status(args: argparse.Namespace) -> int:
    from kdamon.backend.control import collect_status

    statuses = collect_status(common.make_host(), refresh=args.refresh)
    if args.json:
        common.write_json([status_json(s) for s in statuses])
        return 0
    if not statuses:
        print("no kdamond exists")
    for status in statuses:
        print("\n".join(format_status(status)))
    return 0
