"""``kdamon exporter``: serve DAMON's state and results as Prometheus metrics."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "exporter",
        help="serve Prometheus metrics of every kdamond and DAMON module (read-only)",
        description="Serve /metrics for Prometheus: each kdamond's state, intervals, targets, "
        "scheme stats and, from its last tried regions, working-set, hot and cold bytes; "
        "DAMON_STAT's bandwidth and idle-time percentiles. Never writes to DAMON: stats are "
        "as fresh as the kdamond's owner (or its refresh_ms, 6.17+) keeps them.",
    )
    parser.add_argument("--port", type=int, default=None, help="TCP port (default 9795; 0 picks a free one)")
    parser.add_argument("--address", default=None, help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--hot-percent", type=int, default=50,
                        help="a region is hot when accessed in this share of its samples (default 50)")
    parser.add_argument("--cold-idle", default="1s", help="a region is cold when idle this long (default 1s)")
    parser.add_argument("--sysfs-root", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--module-root", type=Path, default=None, help=argparse.SUPPRESS)
    parser.set_defaults(handler=_exporter)


def _exporter(args: argparse.Namespace) -> int:
    import threading

    from kdamon.errors import ConfigError
    from kdamon.exporter import DEFAULT_ADDRESS, DEFAULT_PORT, DamonCollector, Temperature, serve
    from kdamon.kernel.modules import DamonModules
    from kdamon.kernel.sysfs import DEFAULT_ROOT, SysfsDriver
    from kdamon.model.units import parse_duration_us

    if not 0 < args.hot_percent <= 100:
        raise ConfigError("--hot-percent", f"must be between 1 and 100, got {args.hot_percent}")
    temperature = Temperature(hot_permil=args.hot_percent * 10,
                              cold_idle_us=parse_duration_us(args.cold_idle, "--cold-idle"))
    driver = SysfsDriver(args.sysfs_root or DEFAULT_ROOT)
    modules = DamonModules(args.module_root) if args.module_root else DamonModules()
    exporter = serve(DamonCollector(driver, modules, temperature),
                     args.address or DEFAULT_ADDRESS,
                     DEFAULT_PORT if args.port is None else args.port)
    print(f"kdamon exporter: serving {exporter.url}", file=sys.stderr, flush=True)
    try:
        threading.Event().wait()
    finally:
        exporter.shutdown()
    return 0
