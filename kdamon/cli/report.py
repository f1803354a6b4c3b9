"""``kdamon report heatmap|wss|raw FILE``: look at a record file.

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

if TYPE_CHECKING:
    from kdamon.model.snapshot import Snapshot
    from kdamon.records.types import RecordSource


def register(sub: Any) -> None:
    report = sub.add_parser("report", help="heatmap, working set size or raw dump of a record file",
                            description="Report on a record file: kdamon's own, or damo's json, "
                                        "json_compressed and perf script records (recognised by content).")
    kinds = report.add_subparsers(dest="report", metavar="REPORT")
    kinds.required = True

    heatmap = kinds.add_parser("heatmap", help="access heatmap (time x address) in the terminal or as a PNG")
    _add_common(heatmap)
    heatmap.add_argument("--png", type=Path, metavar="OUT", help="write a PNG (needs matplotlib) instead")
    heatmap.add_argument("--width", type=int, help="address bins (terminal default 80, PNG 200)")
    heatmap.add_argument("--height", type=int,
                         help="time bins (terminal default 40, PNG: one per snapshot up to 400)")
    heatmap.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                         help="ANSI colours in the terminal (default: when standard output is a terminal)")
    heatmap.add_argument("--max-nr-accesses", type=int, metavar="N",
                         help="the access count drawn hottest (default: the record's maximum)")
    heatmap.add_argument("--address-range", metavar="START-END",
                         help="draw only these addresses (hex or decimal), e.g. one mapping of the target")
    heatmap.set_defaults(handler=_heatmap)

    wss = kinds.add_parser("wss", help="working set size distribution per target")
    _add_common(wss)
    wss.add_argument("--threshold", type=int, default=0, metavar="N",
                     help="count regions with nr_accesses above N as working (default 0)")
    wss.add_argument("--percentiles", default="0,1,25,50,75,99,100", metavar="P,P,...",
                     help="percentiles to show (default 0,1,25,50,75,99,100)")
    wss.set_defaults(handler=_wss)

    raw = kinds.add_parser("raw", help="every snapshot's regions, as text or JSON Lines")
    _add_common(raw)
    raw.add_argument("--json", action="store_true",
                     help='one JSON object per snapshot and line: {"time_ns", "target", "regions"}')
    raw.set_defaults(handler=_raw)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="the record file")
    parser.add_argument("--target", metavar="K/C/T",
                        help="kdamond/context/target indices of the target to show (default: the first)")
    parser.add_argument("--sample", metavar="DURATION",
                        help="sampling interval of a perf script record (its text does not say)")
    parser.add_argument("--aggr", metavar="DURATION", help="aggregation interval of a perf script record")


def _open(args: argparse.Namespace) -> RecordSource:
    from kdamon.model import parse_duration_us
    from kdamon.records.detect import open_any

    sample_us = parse_duration_us(args.sample, "--sample") if args.sample else 0
    aggr_us = parse_duration_us(args.aggr, "--aggr") if args.aggr else 0
    return open_any(args.file, sample_us=sample_us, aggr_us=aggr_us)


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
    from kdamon.report.heatmap import write_heatmap, write_heatmap_png

    source = _open(args)
    snapshots = list(source.snapshots())
    _warn_truncated(source)
    target = _target(args.target)
    if args.address_range is not None:
        snapshots = _clip(snapshots, args.address_range)
    if args.png is not None:
        write_heatmap_png(args.png, snapshots, width=args.height or 400, height=args.width or 200,
                          target=target, max_nr_accesses=args.max_nr_accesses)
        common.say(f"wrote {args.png}")
        return 0
    color = None if args.color == "auto" else args.color == "always"
    write_heatmap(sys.stdout, snapshots, width=args.width or 80, height=args.height or 40, color=color,
                  target=target, max_nr_accesses=args.max_nr_accesses)
    return 0


def _wss(args: argparse.Namespace) -> int:
    from kdamon.errors import ConfigError
    from kdamon.records.types import group_by_target
    from kdamon.report.wss import wss_table

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
    sys.stdout.write(wss_table(snapshots, threshold=args.threshold, percentiles=percentiles))
    return 0


def _raw(args: argparse.Namespace) -> int:
    from kdamon.report.raw import write_raw_json, write_raw_text

    source = _open(args)
    target = _target(args.target)
    snapshots = (s for s in source.snapshots() if target is None or s.target == target)
    (write_raw_json if args.json else write_raw_text)(sys.stdout, snapshots)
    _warn_truncated(source)
    return 0
