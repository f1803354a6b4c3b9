"""Command-line options that describe a kdamond (``start``, ``tune``, ``record``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kdamon.cli import common
from kdamon.errors import ConfigError

if TYPE_CHECKING:
    from kdamon.model import Intervals, IntervalsGoal, Kdamond, NrRegions, Region

# The model (and cattrs behind it) is imported only when options are turned into
# a kdamond, so that registering the commands stays cheap.
_OPERATIONS = ("vaddr", "fvaddr", "paddr")

__all__ = ["SCHEME_HELP", "add_kdamond_options", "add_paddr_option", "build_kdamond", "kdamond_options_given"]

_OPTION_DESTS = (
    "ops",
    "pid",
    "paddr",
    "regions",
    "numa_node",
    "sample",
    "aggr",
    "update",
    "intervals_goal",
    "nr_regions",
    "scheme",
    "refresh_interval",
)

_SCHEME_KEYS = (
    (
        "action=NAME",
        "the DAMOS action: willneed, cold, pageout, hugepage, nohugepage, lru_prio, lru_deprio, "
        "migrate_hot, migrate_cold, collapse, or stat (the default: only count)",
    ),
    ("sz=MIN-MAX", "region size: 4K, 2MiB, a byte count, min, max"),
    ("nr_accesses=MIN-MAX", "accesses per aggregation: a count of samples, or a share of the maximum (0%-10%)"),
    ("age=MIN-MAX", "age: a count of aggregation intervals, or a duration (5s-max)"),
    ("apply_interval=DUR", "how often the scheme applies (default: every aggregation)"),
    ("quota_time=DUR", "time quota per reset interval"),
    ("quota_size=SIZE", "size quota per reset interval"),
    ("quota_reset=DUR", "the quotas' reset interval"),
    ("quota_weights=S:A:G", "prioritisation weights of size, access rate and age (permil or %)"),
    (
        "quota_goal=METRIC:TARGET[:NID|MEMCG]",
        "a quota auto-tuning goal (repeatable): the quota grows or shrinks to drive METRIC (some_mem_psi_us, "
        "node_mem_used_bp, user_input, ...) to TARGET (a duration for _us metrics, a ratio like 70% for _bp "
        "ones); node_memcg_used_bp:30%:0:/workload names the node and memory cgroup; "
        "user_input:TARGET:CURRENT takes a value you measure (kdamon tune --goals-only updates it)",
    ),
    ("quota_goal_tuner=NAME", "how the quota follows its goals: consist or temporal (Linux 7.1+)"),
    (
        "wmarks=M:INT:H:MID:L",
        "watermarks: metric (free_mem_rate), check interval, high, mid and low "
        "thresholds (permil or %), e.g. free_mem_rate:5s:50%:40%:20%",
    ),
    ("target_nid=N", "the destination NUMA node of migrate_hot and migrate_cold"),
    ("dest=NID:WEIGHT", "a migration destination and its share (repeatable; Linux 6.17+)"),
    (
        "filter=[allow|reject:][!]TYPE[:ARG]",
        "a filter (repeatable): reject:anon, allow:!young, reject:memcg:/workload, reject:addr:0x1000-0x2000, "
        "allow:target:1, reject:hugepage_size:2M-2M; ! matches memory not of the type; the verb defaults to "
        "reject",
    ),
)


def _scheme_help() -> str:
    import textwrap

    indent = " " * 24
    lines = [
        "--scheme SPEC takes KEY=VALUE pairs separated by commas, e.g.",
        "  action=pageout,sz=4K-max,nr_accesses=0-0,age=5s-max",
    ]
    for key, text in _SCHEME_KEYS:
        if len(key) > 21:
            lines.append(f"  {key}")
        lines.append(
            textwrap.fill(
                text,
                width=79,
                initial_indent=f"  {key:21} " if len(key) <= 21 else indent,
                subsequent_indent=indent,
                break_on_hyphens=False,
            )
        )
    lines.append(
        textwrap.fill(
            "Omitted ranges match every region. Percentages and durations become the counts "
            "inside the range at the kdamond's intervals (a lower bound rounds up, an upper "
            "one down).",
            width=79,
        )
    )
    return "\n".join(lines)


SCHEME_HELP = _scheme_help()
"""The epilog of the commands that take ``--scheme``: its keys (those of :mod:`kdamon.cli.scheme_spec`)."""


def add_paddr_option(parser: argparse._ActionsContainer) -> None:
    """``--paddr`` (None or True): physical memory, as ``--ops paddr``; ``build_kdamond`` resolves it."""
    parser.add_argument(
        "--paddr",
        action="store_const",
        const=True,
        help="physical memory, the same as --ops paddr: the largest System RAM range unless --regions or --numa-node",
    )


def add_kdamond_options(
    parser: argparse.ArgumentParser, *, targets: bool = True, update_default: str = "60s", running: bool = False
) -> None:
    """The options that describe a kdamond; ``running``: they change a running kdamond (``tune``),
    whose values are the defaults.  ``targets``: with ``--pid``."""
    from kdamon.cli.arg_types import count, interval_ms, interval_us

    def default(text: str) -> str:
        return "" if running else f" (default: {text})"

    title = "monitoring parameters" + (" (each replaces the running kdamond's value)" if running else "")
    group = parser.add_argument_group(title)
    group.add_argument(
        "--ops", choices=_OPERATIONS, help="operations set" + default("vaddr for processes, paddr without one")
    )
    if targets:
        common.add_pid_option(group, "a process to monitor")
        add_paddr_option(group)
    group.add_argument(
        "--regions",
        metavar="START-END[,START-END...]",
        help="initial monitoring regions, addresses in hex or decimal"
        + default("for paddr, the largest System RAM range"),
    )
    group.add_argument(
        "--numa-node",
        type=count(minimum=0),
        metavar="NID",
        help="paddr: monitor the memory of this NUMA node (its online memory blocks)",
    )
    group.add_argument(
        "--sample",
        type=interval_us,
        metavar="DURATION",
        help="sampling interval, with its unit: 5ms, 100us, ..." + default("5ms"),
    )
    group.add_argument(
        "--aggr", type=interval_us, metavar="DURATION", help="aggregation interval, with its unit" + default("100ms")
    )
    group.add_argument(
        "--update",
        type=interval_us,
        metavar="DURATION",
        help="operations update interval, with its unit" + default(update_default),
    )
    group.add_argument(
        "--intervals-goal",
        metavar="ACCESS:AGGRS:MIN:MAX",
        help="let the kernel tune the sampling interval (Linux 6.15+) so that ACCESS (e.g. 4%%) of "
        "the samples see an access, every AGGRS aggregations, between MIN and MAX (e.g. "
        "4%%:3:5ms:10s); the aggregation interval keeps its ratio; 0 turns it off",
    )
    group.add_argument("--nr-regions", metavar="MIN,MAX", help="bounds of the number of regions" + default("10,1000"))
    group.add_argument(
        "--scheme",
        action="append",
        metavar="SPEC",
        help="a DAMOS scheme (repeatable"
        + ("; replaces every scheme" if running else "")
        + "), e.g. action=pageout,sz=4K-max,nr_accesses=0-0,age=5s-max; its keys are "
        "listed below",
    )
    group.add_argument(
        "--refresh-interval",
        "--refresh",
        dest="refresh_interval",
        type=interval_ms,
        metavar="DURATION",
        help="let the kernel refresh the scheme stats this often, on Linux 6.17+; 0 never does" + default("0"),
    )
    group.add_argument(
        "--engine-stat-only",
        action="store_true",
        help="if kdamon's engine runs the kdamond, only count (as stat schemes) the "
        "schemes whose action it cannot apply, instead of refusing them",
    )
    parser.epilog = SCHEME_HELP


def kdamond_options_given(args: argparse.Namespace) -> list[str]:
    """The kdamond options present on the command line, as ``--option`` names."""
    return ["--" + d.replace("_", "-") for d in _OPTION_DESTS if getattr(args, d, None) is not None]


def _regions(text: str) -> tuple[Region, ...]:
    from kdamon.model import Region, parse_address

    out = []
    for item in text.split(","):
        start, sep, end = item.partition("-")
        if not sep:
            raise ConfigError("--regions", f"expected START-END, got {item!r}")
        try:
            out.append(Region(parse_address(start, "--regions"), parse_address(end, "--regions")))
        except ConfigError as error:
            raise ConfigError("--regions", f"{item!r}: {error.message}") from None
    return tuple(out)


def _nr_regions(text: str) -> NrRegions:
    from kdamon.model import NrRegions, parse_count

    low, sep, high = text.partition(",")
    if not sep:
        raise ConfigError("--nr-regions", f"expected MIN,MAX, got {text!r}")
    try:
        return NrRegions(parse_count(low, "--nr-regions"), parse_count(high, "--nr-regions"))
    except ConfigError as error:
        raise ConfigError("--nr-regions", f"{error.message} (MIN,MAX)") from None


def _intervals_goal(text: str) -> IntervalsGoal:
    from kdamon.model import IntervalsGoal, parse_count, parse_duration_us, parse_ratio_bp

    if text.strip() == "0":
        return IntervalsGoal()
    parts = text.split(":")
    if len(parts) != 4:
        raise ConfigError("--intervals-goal", f"expected ACCESS:AGGRS:MIN:MAX like 4%:3:5ms:10s, got {text!r}")
    try:
        return IntervalsGoal(
            access_bp=parse_ratio_bp(parts[0], "--intervals-goal"),
            aggrs=parse_count(parts[1], "--intervals-goal"),
            min_sample_us=parse_duration_us(parts[2], "--intervals-goal"),
            max_sample_us=parse_duration_us(parts[3], "--intervals-goal"),
        )
    except ConfigError as error:
        raise ConfigError("--intervals-goal", error.message) from None


def _intervals(args: argparse.Namespace, base: Intervals) -> Intervals:
    import attrs

    values: dict[str, Any] = {}
    for dest, field in (("sample", "sample_us"), ("aggr", "aggr_us"), ("update", "update_us")):
        value = getattr(args, dest, None)
        if value is not None:
            values[field] = value
    if getattr(args, "intervals_goal", None) is not None:
        values["goal"] = _intervals_goal(args.intervals_goal)
    try:
        return attrs.evolve(base, **values)
    except ConfigError as error:
        raise ConfigError("intervals", f"{error.message} (check --sample and --aggr)") from None


def build_kdamond(
    args: argparse.Namespace,
    *,
    base: Kdamond | None = None,
    pids: tuple[int, ...] = (),
    iomem: Path = Path("/proc/iomem"),
) -> Kdamond:
    """A kdamond from the options, over ``base`` (a running one's configuration for
    ``tune``; kdamon's defaults otherwise).  ``pids`` are targets started by kdamon."""
    import attrs

    from kdamon.model import Context, Kdamond, Target

    given_pids = tuple(getattr(args, "pid", None) or ()) + pids
    context = base.contexts[0] if base is not None and base.contexts else Context()
    chosen = args.ops
    if getattr(args, "paddr", None):
        if args.ops not in (None, "paddr"):
            raise ConfigError("--ops", "--paddr is physical memory: --ops must be paddr or left out")
        if given_pids:
            raise ConfigError("--paddr", "--paddr is physical memory, --pid and -- CMD processes: give one of them")
        chosen = "paddr"
    ops = chosen or (context.ops if base is not None else ("vaddr" if given_pids else "paddr"))
    regions = _regions(args.regions) if args.regions else None
    node = getattr(args, "numa_node", None)
    if node is not None:
        if regions is not None or given_pids or ops != "paddr":
            raise ConfigError(
                "--numa-node",
                "--numa-node chooses the physical memory a paddr kdamond monitors: "
                "give it without --regions and process targets",
            )
        from kdamon.backend.memory import node_ranges

        regions = node_ranges(node)
    if given_pids:
        targets = tuple(Target(pid=pid, regions=regions or ()) for pid in given_pids)
    elif regions is not None or base is None:
        if ops != "paddr":
            raise ConfigError("--pid", f"{ops} monitors processes: give --pid PID or -- CMD")
        if regions is None:
            from kdamon.backend.memory import largest_system_ram

            regions = (largest_system_ram(iomem),)
        targets = (Target(regions=regions),)
    else:
        targets = context.targets
    intervals = _intervals(args, context.intervals)
    schemes = context.schemes
    if args.scheme is not None:
        from kdamon.cli.scheme_spec import parse_scheme

        schemes = tuple(parse_scheme(text).resolve(intervals) for text in args.scheme)
    try:
        new_context = attrs.evolve(
            context,
            ops=ops,
            intervals=intervals,
            targets=targets,
            schemes=schemes,
            nr_regions=_nr_regions(args.nr_regions) if args.nr_regions else context.nr_regions,
        )
    except ConfigError as error:
        raise ConfigError("options", f"{error}") from None
    refresh = args.refresh_interval if args.refresh_interval is not None else (base.refresh_ms if base else 0)
    return Kdamond(contexts=(new_context,), refresh_ms=refresh)
