"""``kdamon exporter``: serve DAMON's state and results as Prometheus metrics."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from kdamon.cli.arg_types import port
from kdamon.cli.view_options import add_temperature_options

SHIPPED_KINDS = ("dashboard", "rules", "unit")
"""The keys of ``kdamon.exporter.shipped.SHIPPED`` (not imported here: it loads prometheus_client)."""


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "exporter",
        help="serve Prometheus metrics of every kdamond and DAMON module (read-only)",
        description="Serve /metrics for Prometheus: each kdamond's state, intervals, targets and scheme "
        "stats; for every running kdamond (kdamon's, other tools', DAMON_STAT's) the hot, warm and cold "
        "bytes, temperature and recency histograms and idle-time percentiles of its latest aggregation, "
        "read from DAMON's trace events in tracefs instances of its own; DAMON_STAT's bandwidth and "
        "idle-time percentiles. Never writes to DAMON's sysfs, debugfs or module parameters.",
    )
    parser.add_argument(
        "--port", type=port, default=None, metavar="PORT", help="TCP port (default 9795; 0 picks a free one)"
    )
    parser.add_argument("--address", default=None, metavar="ADDRESS", help="address to listen on (default 127.0.0.1)")
    add_temperature_options(parser)
    parser.add_argument(
        "--no-trace",
        action="store_true",
        help="do not read DAMON's trace events (hosts without tracefs): no hot/warm/cold "
        "metrics for kernel kdamonds, only for kdamon's engine kdamonds",
    )
    parser.add_argument(
        "--print-file",
        choices=SHIPPED_KINDS,
        metavar="KIND",
        help="print a shipped file and exit: dashboard (Grafana, JSON), rules (Prometheus "
        "alert rules, YAML) or unit (the hardened systemd unit)",
    )
    parser.set_defaults(handler=_exporter)


def _exporter(args: argparse.Namespace) -> int:
    import signal
    import threading

    from kdamon.cli import common
    from kdamon.cli.view_options import temperature_of
    from kdamon.exporter import DEFAULT_ADDRESS, DEFAULT_PORT, AccessWatches, DamonCollector, serve

    if args.print_file is not None:
        from kdamon.exporter.shipped import shipped_file

        sys.stdout.write(shipped_file(args.print_file).read_text())
        return 0

    def report(line: str) -> None:
        print(f"kdamon exporter: {line}", file=sys.stderr, flush=True)

    temperature = temperature_of(args)
    host = common.make_host()
    access = AccessWatches(host, temperature, trace=not args.no_trace, report=report)
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())  # systemd stops services so
    try:
        if args.no_trace:
            report("--no-trace: no hot/warm/cold metrics for kernel kdamonds")
        access.start()
        exporter = serve(
            DamonCollector(host, temperature, access=access),
            args.address or DEFAULT_ADDRESS,
            DEFAULT_PORT if args.port is None else args.port,
        )
        report(f"serving {exporter.url}")
        try:
            stop.wait()
        finally:
            exporter.shutdown()
    finally:
        access.close()
        signal.signal(signal.SIGTERM, previous)
    return 0
