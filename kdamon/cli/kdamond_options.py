"""Command-line options that describe a kdamond (``start``, ``tune``, ``record``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kdamon.errors import ConfigError

if TYPE_CHECKING:
    from kdamon.model import Intervals, IntervalsGoal, Kdamond, NrRegions, Region

# The model (and cattrs behind it) is imported only when options are turned into
# a kdamond, so that registering the commands stays cheap.
_OPERATIONS = ("vaddr", "fvaddr", "paddr")

__all__ = ["add_kdamond_options", "build_kdamond", "kdamond_options_given"]

_OPTION_DESTS = ("ops", "target_pid", "regions", "numa_node", "sample", "aggr", "update", "intervals_goal",
                 "nr_regions", "scheme", "refresh")


def add_kdamond_options(parser: argparse.ArgumentParser, *, targets: bool = True) -> None:
    group = parser.add_argument_group("monitoring parameters (units accepted: 5ms, 2s, 4KiB, ...)")
    group.add_argument("--ops", choices=_OPERATIONS,
                       help="operations set (default: vaddr for processes, paddr without one)")
    if targets:
        group.add_argument("--target-pid", type=int, action="append", metavar="PID",
                           help="a process to monitor (repeatable)")
    group.add_argument("--regions", metavar="START-END[,START-END...]",
                       help="initial monitoring regions (addresses in hex or decimal); for paddr "
                            "the default is the largest System RAM range")
    group.add_argument("--numa-node", type=int, metavar="NID",
                       help="paddr: monitor the memory of this NUMA node (its online memory blocks)")
    group.add_argument("--sample", metavar="DURATION", help="sampling interval (default 5ms)")
    group.add_argument("--aggr", metavar="DURATION", help="aggregation interval (default 100ms)")
    group.add_argument("--update", metavar="DURATION", help="operations update interval (default 60s)")
    group.add_argument("--intervals-goal", metavar="ACCESS:AGGRS:MIN:MAX",
                       help="let the kernel tune the sampling interval (6.15+) so that ACCESS (e.g. 4%%) of the "
                            "samples see an access, every AGGRS aggregations, between MIN and MAX (e.g. "
                            "4%%:3:5ms:10s); the aggregation interval keeps its ratio; 0 turns it off")
    group.add_argument("--nr-regions", metavar="MIN,MAX", help="bounds of the number of regions (default 10,1000)")
    group.add_argument("--scheme", action="append", metavar="SPEC",
                       help="a DAMOS scheme, e.g. action=pageout,sz=4K-max,nr_accesses=0-0,age=5s-max "
                            "(repeatable; see README)")
    group.add_argument("--refresh", metavar="DURATION",
                       help="let the kernel refresh scheme stats this often (Linux 6.17+)")
    group.add_argument("--engine-stat-only", action="store_true",
                       help="if kdamon's engine runs the kdamond, only count (as stat schemes) the "
                            "schemes whose action it cannot apply, instead of refusing them")


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
        return IntervalsGoal(access_bp=parse_ratio_bp(parts[0], "--intervals-goal"),
                             aggrs=parse_count(parts[1], "--intervals-goal"),
                             min_sample_us=parse_duration_us(parts[2], "--intervals-goal"),
                             max_sample_us=parse_duration_us(parts[3], "--intervals-goal"))
    except ConfigError as error:
        raise ConfigError("--intervals-goal", error.message) from None


def _intervals(args: argparse.Namespace, base: Intervals) -> Intervals:
    import attrs

    from kdamon.model import parse_duration_us

    values: dict[str, Any] = {}
    for dest, field in (("sample", "sample_us"), ("aggr", "aggr_us"), ("update", "update_us")):
        text = getattr(args, dest, None)
        if text is not None:
            values[field] = parse_duration_us(text, f"--{dest}")
    if getattr(args, "intervals_goal", None) is not None:
        values["goal"] = _intervals_goal(args.intervals_goal)
    try:
        return attrs.evolve(base, **values)
    except ConfigError as error:
        raise ConfigError("intervals", f"{error.message} (check --sample and --aggr)") from None


def build_kdamond(args: argparse.Namespace, *, base: Kdamond | None = None, pids: tuple[int, ...] = (),
                  iomem: Path = Path("/proc/iomem")) -> Kdamond:
    """A kdamond from the options, over ``base`` (a running one's configuration for
    ``tune``; kdamon's defaults otherwise).  ``pids`` are targets started by kdamon."""
    import attrs

    from kdamon.model import Context, Kdamond, Target, parse_duration_ms

    given_pids = tuple(getattr(args, "target_pid", None) or ()) + pids
    context = base.contexts[0] if base is not None and base.contexts else Context()
    ops = args.ops or (context.ops if base is not None else ("vaddr" if given_pids else "paddr"))
    regions = _regions(args.regions) if args.regions else None
    node = getattr(args, "numa_node", None)
    if node is not None:
        if regions is not None or given_pids or ops != "paddr":
            raise ConfigError("--numa-node", "--numa-node chooses the physical memory a paddr kdamond monitors: "
                                             "give it without --regions and process targets")
        from kdamon.backend.memory import node_ranges

        regions = node_ranges(node)
    if given_pids:
        targets = tuple(Target(pid=pid, regions=regions or ()) for pid in given_pids)
    elif regions is not None or base is None:
        if ops != "paddr":
            raise ConfigError("--target-pid", f"{ops} monitors processes: give --target-pid PID or -- CMD")
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
            context, ops=ops, intervals=intervals, targets=targets, schemes=schemes,
            nr_regions=_nr_regions(args.nr_regions) if args.nr_regions else context.nr_regions)
    except ConfigError as error:
        raise ConfigError("options", f"{error}") from None
    refresh = parse_duration_ms(args.refresh, "--refresh") if args.refresh else (base.refresh_ms if base else 0)
    return Kdamond(contexts=(new_context,), refresh_ms=refresh)
