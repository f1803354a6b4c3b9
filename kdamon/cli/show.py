"""``kdamon show`` and ``kdamon top``: what a running kdamond sees now, read without disturbing it.

Both watch any kdamond ``kdamon status`` lists (kdamon's, another tool's, a
DAMON module's) through DAMON's trace events, writing nothing to DAMON; with
``--pid``/``--paddr`` and no kdamond monitoring that, they start a temporary
kdamond of their own and remove it on exit.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from kdamon.cli import common
from kdamon.cli.arg_types import count, duration
from kdamon.cli.view_options import add_view_options, region_filter_of, temperature_of

if TYPE_CHECKING:
    from kdamon.backend.host import Host
    from kdamon.backend.live import Frame, Watch


def register(sub: Any) -> None:
    show = sub.add_parser(
        "show",
        help="the access pattern a running kdamond sees now (read-only)",
        usage="kdamon show [ID] [--pid PID ... | --paddr] [--json] [--watch] [filters]",
        description="Print the regions a kdamond reported at its next aggregation (address range, size, "
        "accesses per aggregation and as a share of the maximum, age), then hot, warm and cold "
        "bytes, a temperature (size by access rate) and a recency (size by age) histogram and "
        "idle-time percentiles. Any kdamond of `kdamon status` can be shown; kdamon writes "
        "nothing to DAMON for one it did not start. With --pid or --paddr and no kdamond "
        "monitoring that, a temporary kdamond is started and removed on exit.",
    )
    _add_source_options(show)
    add_view_options(show)
    common.add_json_option(
        show,
        "one object a line per target and aggregation: the `report raw --json` fields, the intervals and the summary",
    )
    show.add_argument("--watch", action="store_true", help="print every aggregation until interrupted")
    show.add_argument("--count", type=count(), metavar="N", help="with --watch: stop after N aggregations")
    show.add_argument(
        "--limit", type=count(minimum=0), metavar="N", help="print at most N regions per target (default: all)"
    )
    show.set_defaults(handler=_show)

    top = sub.add_parser(
        "top",
        help="a live full-screen view of a kdamond: heatmap strip, hottest and coldest regions",
        usage="kdamon top [ID] [--pid PID ... | --paddr] [options]",
        description="Full screen on a terminal: a heatmap strip of the last aggregations, the hottest and "
        "the coldest regions and the totals, refreshed at every aggregation. Keys: q quit, "
        "s sort, n/p next/previous kdamond, t next target. Without a terminal, one line of "
        "totals per aggregation. Writes nothing to DAMON for a kdamond kdamon did not start.",
    )
    _add_source_options(top)
    add_view_options(top)
    top.add_argument(
        "--history", type=count(), default=16, metavar="N", help="aggregations in the heatmap strip (default 16)"
    )
    top.add_argument("--count", type=count(), metavar="N", help="stop after N aggregations (default: run until q)")
    top.set_defaults(handler=_top)


def _add_source_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "id",
        nargs="?",
        metavar="ID",
        help="a running kdamond from `kdamon status` (sysfs:0, "
        "module:damon_stat, engine:1, ...); default: the only one",
    )
    common.add_pid_option(parser, "a process: its kdamond, or a temporary one")
    parser.add_argument(
        "--paddr",
        action="store_true",
        help="physical memory: its kdamond, or a temporary one on the largest System RAM range",
    )
    parser.add_argument(
        "--warmup",
        type=count(minimum=0),
        default=10,
        metavar="N",
        help="aggregations a temporary kdamond runs before it is shown (default 10)",
    )
    parser.add_argument(
        "--timeout",
        type=duration(),
        default="30s",
        metavar="DURATION",
        help="give up when no aggregation arrives for this long, plus three aggregation intervals (default 30s)",
    )
    common.add_backend_option(parser)


def _open(args: argparse.Namespace, host: Host) -> Watch:
    """The watch the options name: a running kdamond, or a temporary one."""
    from kdamon.backend.live import StreamWatch, find_watched, open_watch, watchable
    from kdamon.backend.types import KdamondId
    from kdamon.errors import ConfigError, KdamonError

    if args.pid and args.paddr:
        raise ConfigError("--paddr", "give --pid or --paddr, not both")
    if args.id is not None:
        if args.pid or args.paddr:
            raise ConfigError("ID", "give a kdamond ID or --pid/--paddr, not both")
        return open_watch(host, find_watched(host, KdamondId.parse(args.id)))
    running = watchable(host)
    if args.pid or args.paddr:
        wanted = {f"pid {pid}" for pid in args.pid or ()}
        for watched in running:
            if (args.paddr and watched.ops == "paddr") or (wanted and wanted <= set(watched.targets)):
                common.say(f"showing {watched.id}, which monitors {', '.join(sorted(wanted)) or 'physical memory'}")
                return open_watch(host, watched)
        from kdamon.cli.kdamond_options import build_kdamond

        options = argparse.Namespace(
            ops="paddr" if args.paddr else None,
            pid=None,
            regions=None,
            sample=None,
            aggr=None,
            update=1_000_000,
            nr_regions=None,
            scheme=None,
            refresh_interval=None,
        )
        kdamond = build_kdamond(options, pids=tuple(args.pid or ()))
        watch = StreamWatch(host, kdamond, args.backend, warmup=args.warmup)
        common.say(f"starting a temporary kdamond on {watch.reason}; it is removed on exit")
        return watch
    if len(running) == 1:
        return open_watch(host, running[0])
    if not running:
        raise KdamonError(
            "no kdamond runs here: start one (`kdamon start`), or give --pid PID or --paddr for a temporary one"
        )
    raise ConfigError("ID", f"{len(running)} kdamonds run ({', '.join(str(w.id) for w in running)}): name one")


def _frames(watch: Watch, timeout_s: float, stop: Callable[[], bool] = lambda: False) -> Iterator[Frame]:
    """The watch's frames; an error when none arrives within the timeout (plus three aggregations)."""
    from kdamon.errors import KdamonError

    watched = watch.watched
    patience = timeout_s + 3 * watched.aggr_us / 1e6
    if watched.aggr_us >= 1_000_000 or watched.tuned:
        common.say(
            f"waiting for the next aggregation of {watched.id} (every {watched.aggr_us / 1e6:g} s"
            f"{', auto-tuned' if watched.tuned else ''})"
        )
    last = time.monotonic()
    timed_out = False

    def until() -> bool:
        nonlocal timed_out
        timed_out = time.monotonic() - last > patience
        return timed_out or stop()

    for frame in watch.frames(until):
        last = time.monotonic()
        yield frame
    if timed_out:
        raise KdamonError(
            f"no aggregation of {watched.id} arrived within {patience:.0f} s: is it monitoring "
            "anything? (`kdamon status`) DAMON also pauses a kdamond while the watermarks of "
            "all its schemes deactivate them (DAMON_RECLAIM's, by default, while more than "
            "half of the memory is free)"
        )


def _show(args: argparse.Namespace) -> int:
    from kdamon.report.access import access_json, access_text

    temperature, region_filter = temperature_of(args), region_filter_of(args)
    timeout_s = args.timeout / 1e6
    host = common.make_host()
    shown = 0
    with _open(args, host) as watch:
        for frame in _frames(watch, timeout_s):
            for snapshot in frame.snapshots:
                title = watch.watched.title(snapshot.target_idx)
                if args.json:
                    sys.stdout.write(
                        access_json(
                            snapshot,
                            temperature=temperature,
                            region_filter=region_filter,
                            sort=args.sort,
                            extra={"kdamond": str(watch.watched.id), "what": title},
                        )
                    )
                else:
                    if shown:
                        sys.stdout.write("\n")
                    sys.stdout.write(
                        access_text(
                            snapshot,
                            title=title,
                            temperature=temperature,
                            region_filter=region_filter,
                            sort=args.sort,
                            limit=args.limit,
                        )
                    )
            sys.stdout.flush()
            shown += 1
            if not args.watch or (args.count is not None and shown >= args.count):
                break
    return 0


def _top(args: argparse.Namespace) -> int:
    from kdamon.cli.top_screen import run_top

    return run_top(args, common.make_host(), _open, _frames, temperature_of(args), region_filter_of(args))
