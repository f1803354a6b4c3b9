"""Configured against achieved sampling of the engine on a real process, per access check.

For each access check this host offers (page_idle, uffd, soft_dirty, smaps; the others are
listed as skipped, with the reason), runs kdamon's engine for ``--seconds`` (default 8) on
the hot/cold demo workload (``python3 -m kdamon.testing.workloads hot_cold``, 8 MiB hot, 64 MiB cold,
registered for userfaultfd write-protect for ``uffd``) at the default intervals (5 ms
sampling, 100 ms aggregation), and prints for the aggregations before the engine widened
its intervals and for those after:

* the intervals the engine used for most of those aggregations, the samples and
  aggregations per second achieved (against the 200 and 10 per second configured);
* the mean aggregation interval the snapshots say against the one measured between them;
* the engine's own work and the lateness of its wake-ups in a typical sample.

Figures depend on the machine and its load (printed first). Run:
``python3 benchmarks/engine_intervals.py [--seconds 8] [--sample 5ms] [--aggr 100ms]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

import attrs

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kdamon.engine.core import Callbacks, Monitor  # noqa: E402
from kdamon.engine.ops.checks import CHECK_KINDS, CheckKind, host_problem, process_problem  # noqa: E402
from kdamon.engine.ops.vaddr import VaddrOps  # noqa: E402
from kdamon.errors import EngineWarning  # noqa: E402
from kdamon.model import Context, Intervals, Target, format_duration_us, parse_duration_us  # noqa: E402


@attrs.define
class Aggregation:
    end_s: float
    samples: int
    stamped_us: int  # the aggregation interval its snapshot says
    widened: bool  # the engine had widened its intervals by the end of it
    next_intervals: tuple[int, int]  # the intervals the engine used from then on


@attrs.frozen
class Phase:
    label: str
    aggregations: list[Aggregation]
    used: list[tuple[int, int]]  # the intervals in use during each aggregation
    duration_s: float

    @property
    def intervals(self) -> str:
        sample_us, aggr_us = Counter(self.used).most_common(1)[0][0] if self.used else (0, 0)
        return f"{fmt(sample_us)} / {fmt(aggr_us)}"


def start_workload(kind: CheckKind, directory: Path) -> subprocess.Popen[bytes]:
    layout = directory / f"{kind}.json"
    command = [
        sys.executable,
        "-m",
        "kdamon.testing.workloads",
        "hot_cold",
        "--sizes",
        "8MiB",
        "64MiB",
        "--seconds",
        "600",
        "--layout",
        str(layout),
    ] + (["--uffd"] if kind == "uffd" else [])
    process = subprocess.Popen(command, env=dict(os.environ, PYTHONPATH=sys.path[0]))
    while not layout.exists():
        if process.poll() is not None:
            raise SystemExit(f"the workload exited ({process.returncode}) before it was set up")
        time.sleep(0.02)
    return process


def measure(
    kind: CheckKind, pid: int, intervals: Intervals, seconds: float
) -> tuple[float, list[Aggregation], Monitor]:
    samples = 0
    aggregations: list[Aggregation] = []
    began = 0.0

    def before_start(_monitor: Monitor) -> None:
        nonlocal began
        began = time.monotonic()

    def after_sampling(_monitor: Monitor) -> None:
        nonlocal samples
        samples += 1

    def after_aggregation(monitor: Monitor) -> None:
        nonlocal samples
        stamped = monitor.snapshots()[0].aggr_us
        pace = monitor.pace
        aggregations.append(
            Aggregation(time.monotonic() - began, samples, stamped, pace.widened, (pace.sample_us, pace.aggr_us))
        )
        samples = 0

    context = Context(targets=(Target(pid=pid),), intervals=intervals)
    monitor = Monitor(
        context,
        VaddrOps([kind]),
        seed=1,
        callbacks=Callbacks(
            before_start=before_start, after_sampling=after_sampling, after_aggregation=after_aggregation
        ),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EngineWarning)  # the widening is printed below
        monitor.run(duration_us=int(seconds * 1e6))
    return began, aggregations, monitor


def phases(aggregations: list[Aggregation], configured: Intervals) -> list[Phase]:
    used = [(configured.sample_us, configured.aggr_us)] + [a.next_intervals for a in aggregations[:-1]]
    first = next((i for i, a in enumerate(aggregations) if a.widened), len(aggregations) - 1)
    before, after = aggregations[: first + 1], aggregations[first + 1 :]
    out = [Phase("before widening", before, used[: first + 1], before[-1].end_s if before else 0.0)]
    if after:
        out.append(Phase("after widening", after, used[first + 1 :], after[-1].end_s - before[-1].end_s))
    return out


def fmt(us: float) -> str:
    return format_duration_us(int(us), approx=True)


def row(kind: str, phase: Phase) -> str:
    aggregations = phase.aggregations
    if not aggregations or phase.duration_s <= 0:
        return f"{kind:10} {phase.label:16} {phase.intervals:>14}   no aggregation"
    samples = sum(a.samples for a in aggregations)
    stamped = sum(a.stamped_us for a in aggregations) / len(aggregations)
    measured = phase.duration_s * 1e6 / len(aggregations)
    return (
        f"{kind:10} {phase.label:16} {phase.intervals:>14} {samples / phase.duration_s:10.1f} "
        f"{len(aggregations) / phase.duration_s:8.2f} {fmt(stamped):>10} {fmt(measured):>10}"
        f" {len(aggregations):6}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="monitoring time per check")
    parser.add_argument("--sample", default="5ms", help="configured sampling interval")
    parser.add_argument("--aggr", default="100ms", help="configured aggregation interval")
    args = parser.parse_args()
    configured = Intervals(
        sample_us=parse_duration_us(args.sample, "--sample"),
        aggr_us=parse_duration_us(args.aggr, "--aggr"),
        update_us=1_000_000,
    )
    load = os.getloadavg()[0]
    print(
        f"host: {os.cpu_count()} CPUs, load average {load:.1f}; configured: sampling {fmt(configured.sample_us)} "
        f"({1e6 / configured.sample_us:g} samples/s), aggregation {fmt(configured.aggr_us)} "
        f"({1e6 / configured.aggr_us:g} aggregations/s); {args.seconds:g} s per check\n"
    )
    print(
        f"{'check':10} {'phase':16} {'intervals':>14} {'samples/s':>10} {'aggrs/s':>8} "
        f"{'snapshots':>10} {'measured':>10} {'aggrs':>6}"
    )
    skipped: list[str] = []
    with tempfile.TemporaryDirectory() as directory:
        for kind in CHECK_KINDS:
            problem = host_problem(kind)
            if problem is not None:
                skipped.append(f"{kind}: {problem}")
                continue
            workload = start_workload(kind, Path(directory))
            try:
                problem = process_problem(kind, workload.pid)
                if problem is not None:
                    skipped.append(f"{kind}: {problem}")
                    continue
                _, aggregations, monitor = measure(kind, workload.pid, configured, args.seconds)
            finally:
                workload.kill()
                workload.wait()
            for phase in phases(aggregations, configured):
                print(row(kind, phase))
            pace = monitor.pace
            print(
                f"{'':10} {len(aggregations)} snapshots in {args.seconds:g} s; a typical sample: "
                f"{fmt(pace.busy_us)} of work, wake-up {fmt(pace.late_us)} late"
                + ("" if pace.widened else "; not widened")
            )
    for line in skipped:
        print(f"skipped {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
