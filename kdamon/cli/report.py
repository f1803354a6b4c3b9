"""``kdamon report heatmap|wss|access|trace|raw FILE``: look at a record file.

FILE is kdamon's record file or one of the peer's (damo's ``json``,
``json_compressed``, or ``perf script`` text of ``damon:damon_aggregated``),
recognised from its content.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kdamon.cli import common
from kdamon.cli.arg_types import count, duration, interval_us
from kdamon.cli.view_options import add_view_options, region_filter_of, temperature_of

if TYPE_CHECKING:
    from kdamon.model.snapshot import Snapshot
    from kdamon.records.types import RecordSource


def register(sub: Any) -> None:
    report = sub.add_parser(
        "report",
        help="heatmap, access view, working set size or raw dump of a record file",
        description="Report on a record file: kdamon's own, or damo's json, "
        "json_compressed and perf script records (recognised by content).",
    )
    kinds = report.add_subparsers(dest="report", metavar="REPORT")
    kinds.required = True

    heatmap = kinds.add_parser(
        "heatmap",
        help="access heatmap (time x address) in the terminal, as a PNG or as JSON",
        description="Draw one target's access intensity over time: in the terminal (time going down, "
        "address to the right, gaps between monitored areas removed), as a PNG (time on x, "
        "address on y) or, with --json, the grid of numbers behind the drawing.",
    )
    _add_common(heatmap)
    output = heatmap.add_mutually_exclusive_group()
    output.add_argument(
        "--png", type=Path, metavar="FILE", help="write a PNG (needs matplotlib) instead; - for standard output"
    )
    common.add_json_option(
        output,
        "the grid instead of a drawing (one document: time and address bin edges, "
        "the monitored areas, each cell's intensity from 0 to 1)",
    )
    heatmap.add_argument("--width", type=count(), metavar="N", help="address bins (default: 80; PNG 200)")
    heatmap.add_argument(
        "--height", type=count(), metavar="N", help="time bins, at most one per snapshot (default: 40; PNG 400)"
    )
    heatmap.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="ANSI colours in the terminal (default auto: only when standard output is a "
        "terminal, NO_COLOR is not set and TERM is not dumb)",
    )
    heatmap.add_argument(
        "--max-nr-accesses",
        type=count(),
        metavar="N",
        help="the access count drawn hottest (default: the record's maximum)",
    )
    heatmap.add_argument(
        "--address-range",
        metavar="START-END",
        help="draw only these addresses (hex or decimal), e.g. one mapping of the target",
    )
    heatmap.set_defaults(handler=_heatmap)

    wss = kinds.add_parser(
        "wss",
        help="working set size distribution per target",
        description="Per target, the working set size of each snapshot (the bytes of regions accessed more "
        "than --threshold times in an aggregation), as percentiles and a mean.",
    )
    _add_common(wss)
    wss.add_argument(
        "--threshold",
        type=count(minimum=0),
        default=0,
        metavar="N",
        help="count regions with nr_accesses above N as working (default 0)",
    )
    wss.add_argument(
        "--percentiles",
        default="0,1,25,50,75,99,100",
        metavar="P,P,...",
        help="percentiles to show (default 0,1,25,50,75,99,100)",
    )
    common.add_json_option(
        wss, "one document: per target the percentiles, the mean, and each snapshot's working set size"
    )
    wss.set_defaults(handler=_wss)

    access = kinds.add_parser(
        "access",
        help="the access pattern at one moment: regions, hot/warm/cold bytes, histograms",
        description="The view of `kdamon show` on a record: each target's snapshot at --at (the last by "
        "default) with its regions, hot, warm and cold bytes, temperature and recency "
        "histograms and idle-time percentiles.",
    )
    _add_common(access)
    access.add_argument(
        "--at",
        type=duration(zero=True),
        metavar="DURATION",
        help="the last snapshot at most this long after the record's first one (e.g. 30s; "
        "plain numbers are seconds); default: the record's last snapshot",
    )
    common.add_json_option(
        access, "one object a line per target: the `report raw --json` fields, the intervals and the summary"
    )
    access.add_argument(
        "--limit", type=count(minimum=0), metavar="N", help="print at most N regions per target (default: all)"
    )
    add_view_options(access)
    access.set_defaults(handler=_access)

    trace = kinds.add_parser(
        "trace",
        help="scheme applications per scheme over time (regions, bytes), and interval tunes",
        description="Count the scheme applications a kdamon record keeps (damos_before_apply events, recorded "
        "from kernel DAMON 6.7+) per scheme and time bin, and list the interval tunes.",
    )
    trace.add_argument("file", type=Path, metavar="FILE", help="a kdamon record file")
    trace.add_argument(
        "--interval",
        type=duration(),
        default="1s",
        metavar="DURATION",
        help="time bin width (default 1s; plain numbers are seconds)",
    )
    common.add_json_option(trace, "one document: the applications per scheme and time bin, and the interval tunes")
    trace.set_defaults(handler=_trace)

    raw = kinds.add_parser(
        "raw",
        help="every snapshot's regions, as text or JSON Lines",
        description="Every snapshot of the record with its regions (start, end, accesses, "
        "age), as text or one JSON object a line.",
    )
    _add_common(raw)
    common.add_json_option(raw, 'one object a line per snapshot: {"time_ns", "target", "regions"}')
    raw.set_defaults(handler=_raw)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file",
        type=Path,
        metavar="FILE",
        help="the record file: kdamon's, or damo's json, json_compressed or perf script text",
    )
    parser.add_argument(
        "--target", metavar="K/C/T", help="kdamond/context/target indices of the target to show (default: the first)"
    )
    parser.add_argument(
        "--sample",
        type=interval_us,
        metavar="DURATION",
        help="sampling interval of a perf script record, with its unit (its text does not say)",
    )
    parser.add_argument(
        "--aggr",
        type=interval_us,
        metavar="DURATION",
        help="aggregation interval of a perf script record, with its unit",
    )


def _open(args: argparse.Namespace) -> RecordSource:
    from kdamon.records.detect import open_any

    return open_any(args.file, sample_us=args.sample or 0, aggr_us=args.aggr or 0)


def _target(text: str | None) -> tuple[int, int, int] | None:
    from kdamon.errors import ConfigError

    if text is None:
        return None
    parts = text.split("/")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ConfigError("--target", f"expected KDAMOND/CONTEXT/TARGET indices like 0/0/1, got {text!r}")
    return int(parts[0]), int(parts[1]), int(parts[2])


def _warn_truncated(source: RecordSource) -> None:
    if source.truncated:
        common.say(f"{source.path} ends in an incomplete snapshot (its recorder was killed); it was skipped")


def _clip(snapshots: list[Snapshot], text: str) -> list[Snapshot]:
    """The snapshots with their regions cut to ``START-END``; snapshots left empty are dropped."""
    import attrs
    import numpy as np

    from kdamon.errors import ConfigError

    low_text, _, high_text = text.partition("-")
    try:
        low, high = int(low_text, 0), int(high_text, 0)
    except ValueError:
        raise ConfigError("--address-range", f"expected START-END addresses, got {text!r}") from None
    if low >= high:
        raise ConfigError("--address-range", f"START must be below END, got {text!r}")
    out = []
    for snapshot in snapshots:
        regions = snapshot.regions
        regions = regions[(regions["end"] > low) & (regions["start"] < high)].copy()
        if len(regions):
            regions["start"] = np.maximum(regions["start"], np.uint64(low))
            regions["end"] = np.minimum(regions["end"], np.uint64(high))
            out.append(attrs.evolve(snapshot, regions=regions))
    if not out:
        raise ConfigError("--address-range", f"no recorded region overlaps {text}")
    return out


def _heatmap(args: argparse.Namespace) -> int:
    from kdamon.report.heatmap import heatmap_json, write_heatmap, write_heatmap_png
    from kdamon.userfiles import ensure_writable

    if args.png is not None:
        ensure_writable(args.png)
    source = _open(args)
    snapshots = list(source.snapshots())
    _warn_truncated(source)
    target = _target(args.target)
    if args.address_range is not None:
        snapshots = _clip(snapshots, args.address_range)
    if args.png is not None:
        write_heatmap_png(
            args.png,
            snapshots,
            width=args.height or 400,
            height=args.width or 200,
            target=target,
            max_nr_accesses=args.max_nr_accesses,
        )
        common.say(f"wrote the heatmap to {common.output_name(args.png)}")
    elif args.json:
        sys.stdout.write(
            heatmap_json(
                snapshots,
                width=args.width or 80,
                height=args.height or 40,
                target=target,
                max_nr_accesses=args.max_nr_accesses,
            )
        )
    else:
        write_heatmap(
            sys.stdout,
            snapshots,
            width=args.width or 80,
            height=args.height or 40,
            color=common.use_color(sys.stdout, args.color),
            target=target,
            max_nr_accesses=args.max_nr_accesses,
        )
    return 0


def _wss(args: argparse.Namespace) -> int:
    from kdamon.errors import ConfigError
    from kdamon.records.types import group_by_target
    from kdamon.report.wss import wss_json, wss_table

    try:
        percentiles = [float(p) for p in args.percentiles.split(",")]
    except ValueError:
        raise ConfigError("--percentiles", f"expected numbers separated by commas, got {args.percentiles!r}") from None
    source = _open(args)
    snapshots = list(source.snapshots())
    target = _target(args.target)
    if target is not None:
        snapshots = group_by_target(snapshots).get(target, [])
        if not snapshots:
            raise ConfigError("--target", f"the record has no snapshots of target {args.target}")
    _warn_truncated(source)
    write = wss_json if args.json else wss_table
    sys.stdout.write(write(snapshots, threshold=args.threshold, percentiles=percentiles))
    return 0


def _raw(args: argparse.Namespace) -> int:
    from kdamon.report.raw import write_raw_json, write_raw_text

    source = _open(args)
    target = _target(args.target)
    snapshots = (s for s in source.snapshots() if target is None or s.target == target)
    (write_raw_json if args.json else write_raw_text)(sys.stdout, snapshots)
    _warn_truncated(source)
    return 0


def _access(args: argparse.Namespace) -> int:
    from kdamon.errors import ConfigError
    from kdamon.report.access import access_json, access_text

    at_us: int | None = args.at
    source = _open(args)
    wanted = _target(args.target)
    chosen: dict[tuple[int, int, int], Snapshot] = {}
    first_ns: int | None = None
    for snapshot in source.snapshots():
        first_ns = snapshot.time_ns if first_ns is None else first_ns
        if at_us is not None and snapshot.time_ns - first_ns > at_us * 1000:
            break
        if wanted is None or snapshot.target == wanted:
            chosen[snapshot.target] = snapshot
    _warn_truncated(source)
    if not chosen:
        what = f"of target {args.target}" if wanted is not None else "at all"
        raise ConfigError("FILE", f"{args.file} holds no snapshot {what} (in the time asked for)")
    temperature, region_filter = temperature_of(args), region_filter_of(args)
    texts = []
    for (kd, ctx, tgt), snapshot in chosen.items():
        at = (snapshot.time_ns - (first_ns or 0)) / 1e9
        if args.json:
            texts.append(access_json(snapshot, temperature=temperature, region_filter=region_filter, sort=args.sort))
        else:
            title = f"{args.file.name} kdamond {kd} context {ctx} target {tgt} at {at:.3f} s"
            texts.append(
                access_text(
                    snapshot,
                    title=title,
                    temperature=temperature,
                    region_filter=region_filter,
                    sort=args.sort,
                    limit=args.limit,
                )
            )
    sys.stdout.write(("" if args.json else "\n").join(texts))
    return 0


def _trace(args: argparse.Namespace) -> int:
    from kdamon.errors import ConfigError
    from kdamon.records.detect import open_any
    from kdamon.records.reader import RecordReader
    from kdamon.report.trace import apply_bins, trace_json, trace_text

    width_ns = args.interval * 1000
    source = open_any(args.file)
    if not isinstance(source, RecordReader):
        raise ConfigError(
            "FILE",
            f"{args.file} is a {source.format_name} record, which keeps no scheme "
            "applications; record with `kdamon record` from kernel DAMON",
        )
    chunks = list(source.applies())
    tunes = list(source.tunes())
    firsts = [int(rows["time_ns"][0]) for _, rows in chunks if rows.size] + [t.time_ns for t in tunes]
    first_snapshot = next(source.snapshots(), None)
    if first_snapshot is not None:
        firsts.append(first_snapshot.time_ns)
    origin = min(firsts, default=0)
    bins = apply_bins(chunks, origin_ns=origin, width_ns=width_ns)
    write = trace_json if args.json else trace_text
    sys.stdout.write(write(bins, tunes, origin_ns=origin, width_ns=width_ns))
    _warn_truncated(source)
    return 0
