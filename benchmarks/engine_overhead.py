"""Overhead of the pure-Python DAMON engine on synthetic targets.

For 1,000 regions on targets of 1 GiB, 64 GiB and 1 TiB, measures on a
virtual clock (so only the engine's own work counts):

* region checks per second: regions sampled and checked per CPU second in
  iterations without an aggregation;
* CPU time per aggregation: the extra CPU time of an iteration that ends an
  aggregation (merge, reset, snapshot keeping, split), over a plain one.

Run: ``python3 benchmarks/engine_overhead.py [--seconds 20]`` (virtual seconds
of monitoring per target size).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kdamon.engine.core import Callbacks, Monitor  # noqa: E402
from kdamon.engine.ops.patterns import SyntheticPattern  # noqa: E402
from kdamon.engine.ops.synthetic import SyntheticOps, synthetic_context  # noqa: E402
from kdamon.model.config import NrRegions  # noqa: E402

NR_REGIONS = 1000
SIZES = (("1 GiB", 1 << 30), ("64 GiB", 64 << 30), ("1 TiB", 1 << 40))


def measure(size: int, seconds: float) -> tuple[float, float, int]:
    """(region checks per CPU second, CPU µs per aggregation, regions at the end)."""
    pattern = SyntheticPattern(
        kind="stairs", size=size, hot_size=size // 16, hot_rate_hz=200.0, cold_rate_hz=1.0, step_us=2_000_000
    )
    stamps: list[int] = []
    aggregated: set[int] = set()

    def after_sampling(monitor: Monitor) -> None:
        stamps.append(time.thread_time_ns())

    def after_aggregation(monitor: Monitor) -> None:
        aggregated.add(len(stamps))

    # min == max keeps the count at 1,000: the even initial split makes
    # every region exactly the merge size limit, and no split is allowed.
    context = synthetic_context(1, nr_regions=NrRegions(min=NR_REGIONS, max=NR_REGIONS))
    monitor = Monitor(
        context,
        SyntheticOps([pattern]),
        seed=1,
        callbacks=Callbacks(after_sampling=after_sampling, after_aggregation=after_aggregation),
    )
    monitor.run_virtual(int(seconds * 1e6))
    plain: list[int] = []
    with_aggregation: list[int] = []
    for index in range(1, len(stamps)):
        spent = stamps[index] - stamps[index - 1]
        (with_aggregation if index in aggregated else plain).append(spent)
    per_iteration_ns = statistics.median(plain)
    checks_per_s = NR_REGIONS / (per_iteration_ns / 1e9)
    aggregation_us = (statistics.mean(with_aggregation) - per_iteration_ns) / 1e3
    return checks_per_s, aggregation_us, len(monitor.ctx.targets[0].regions)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="virtual seconds of monitoring per target size")
    args = parser.parse_args()
    print(f"{'target':>8} {'regions':>8} {'checks/s':>12} {'CPU/aggregation':>16}")
    for label, size in SIZES:
        checks, aggregation_us, regions = measure(size, args.seconds)
        print(f"{label:>8} {regions:>8} {checks:>12,.0f} {aggregation_us:>13,.0f} µs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
