"""The live view's costs: trace events per second, CPU per watched kdamond, freshness, JSON output.

Host part (synthesised trace pages, no DAMON touched):

* events/s that the tracepoint path (page decoder, assembler, framer) sustains
  with 10,000 regions per aggregation;
* CPU per aggregation of a 1,000-region kdamond through what ``kdamon show
  --watch``/``top`` do per frame (decode, assemble, frame, summarise), and what
  that is at the default 100 ms aggregation, idle polling included;
* regions/s of ``report raw --json`` and ``show --json``.

Guest part (``--guest``, a TCG guest booted from debian-6.12): a paddr kdamond
with 1,000 regions at default intervals, watched by ``kdamon show --watch
--json`` for 20 s: its CPU share of one core and the freshness of each view
(from the aggregation's first trace event to the line written).  TCG emulates
the CPU, so the guest's CPU figures are several times the native ones.

    python3 benchmarks/live_view.py [--guest]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from kdamon.backend.live import Framer, Watched
from kdamon.backend.types import KdamondId
from kdamon.model.access import summarise
from kdamon.model.snapshot import Snapshot, regions_array
from kdamon.report.access import access_json
from kdamon.report.raw import write_raw_json
from kdamon.trace.assemble import RecordAssembler
from kdamon.trace.events import AGGREGATED, parse_format
from kdamon.trace.lines import AggregatedLines
from kdamon.trace.pages import PageDecoder
from kdamon.trace.synth import FORMAT_TEXTS, pages

PID = 4321
AGGR_NS = 100_000_000


def aggregation_pages(aggregations: int, regions: int) -> list[list[bytes]]:
    """Ring-buffer pages of each aggregation of one target with ``regions`` regions."""
    out = []
    for a in range(aggregations):
        t0 = 1_000_000_000 + a * AGGR_NS
        events = [
            (t0 + r * 50, AGGREGATED, (0, regions, r * 65536, (r + 1) * 65536, (r * 7 + a) % 21, a % 100))
            for r in range(regions)
        ]
        out.append(pages(events, PID))
    return out


def watched(regions: int) -> Watched:
    return Watched(KdamondId("sysfs", "0"), "foreign", PID, "paddr", 5000, 100000, False, ("physical memory",))


def pipeline(batches: list[list[bytes]], *, summary: bool) -> tuple[int, float]:
    """Frames out of the batches as a trace watch makes them; (frames, CPU seconds)."""
    decoder = PageDecoder([parse_format(FORMAT_TEXTS[AGGREGATED])])
    assembler = RecordAssembler(0, 5000, 100000, PID)
    framer = Framer(watched(0))
    frames = 0
    start = time.process_time()
    for batch in batches:
        parts: list[AggregatedLines] = []
        for page in batch:
            decoder.decode(page, parts, [])
        for record in assembler.feed(AggregatedLines.concatenate(parts)):
            frame = framer.feed(record)
            if frame is not None:
                frames += 1
                if summary:
                    summarise(frame.snapshots[0])
    return frames, time.process_time() - start


def idle_poll_cpu_per_s(cpus: int = 2, poll_s: float = 0.05) -> float:
    """CPU seconds per second of the session's polling when nothing comes (non-blocking reads of empty pipes)."""
    fds = []
    for _ in range(cpus):
        r, w = os.pipe()
        os.set_blocking(r, False)
        fds.append((r, w))
    rounds = 200
    start = time.process_time()
    for _ in range(rounds):
        for r, _w in fds:
            try:
                os.read(r, 4096)
            except BlockingIOError:
                pass
    spent = time.process_time() - start
    for r, w in fds:
        os.close(r)
        os.close(w)
    return spent / rounds / poll_s  # rounds per second = 1 / poll_s


def host_part() -> None:
    print("== host: the tracepoint path on synthesised ring-buffer pages")
    big = aggregation_pages(20, 10_000)
    frames, cpu = pipeline(big, summary=False)
    print(
        f"10,000 regions per aggregation: {20 * 10_000 / cpu:12,.0f} events/s ({frames} frames, "
        f"{cpu * 1000 / 20:.1f} ms CPU per aggregation)"
    )
    default = aggregation_pages(100, 1000)
    frames, cpu = pipeline(default, summary=True)
    per_aggregation = cpu / 100
    idle = idle_poll_cpu_per_s()
    share = (per_aggregation * 10 + idle) * 100
    print(
        f"1,000 regions per aggregation, summarised: {per_aggregation * 1e6:.0f} us CPU per aggregation; "
        f"at 10 aggregations/s plus polling ({idle * 1e6:.0f} us/s): {share:.2f}% of one core "
        f"(target <= 1%)"
    )
    n = 1000
    snapshots = [
        Snapshot(
            i,
            0,
            0,
            0,
            regions_array(
                np.arange(n) * 65536 + (1 << 40),
                np.arange(1, n + 1) * 65536 + (1 << 40),
                np.arange(n) % 21,
                np.arange(n),
            ),
            5000,
            100000,
        )
        for i in range(300)
    ]
    start = time.perf_counter()
    write_raw_json(io.StringIO(), snapshots)
    raw = 300 * n / (time.perf_counter() - start)
    start = time.perf_counter()
    for snapshot in snapshots:
        access_json(snapshot)
    shown = 300 * n / (time.perf_counter() - start)
    print(
        f"JSON out: report raw --json {raw:12,.0f} regions/s, show --json {shown:12,.0f} regions/s "
        "(target >= 1,000,000)"
    )


GUEST_SECONDS = 20
MARK = "live-view: "


def guest_part() -> None:
    """Runs inside the guest: a 1,000-region paddr kdamond, watched by `kdamon show --watch --json`."""
    env = dict(os.environ, KDAMON_STATE_DIR="/tmp/kdamon-bench")
    kdamon = [sys.executable, "-m", "kdamon"]
    subprocess.run(
        [*kdamon, "start", "--ops", "paddr", "--nr-regions", "1000,1000"], env=env, check=True, capture_output=True
    )
    try:
        time.sleep(2)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        watch = subprocess.Popen([*kdamon, "show", "--watch", "--json"], env=env, stdout=subprocess.PIPE, text=True)
        assert watch.stdout is not None
        fresh, regions = [], []
        started = time.monotonic()
        for line in watch.stdout:
            now_ns = time.monotonic_ns()
            view = json.loads(line)
            fresh.append((now_ns - view["time_ns"]) / 1e6)
            regions.append(len(view["regions"]))
            if time.monotonic() - started >= GUEST_SECONDS:
                break
        watch.terminate()
        watch.wait()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        elapsed = time.monotonic() - started
        print(
            f"{MARK}guest (TCG): {len(fresh)} views in {elapsed:.1f} s, {statistics.median(regions):.0f} regions each; "
            f"kdamon show --watch --json used {100 * cpu / elapsed:.1f}% of one core (start-up included); "
            f"freshness median {statistics.median(fresh[1:] or fresh):.0f} ms, max {max(fresh[1:] or fresh):.0f} ms "
            "(aggregation interval 100 ms)"
        )
    finally:
        subprocess.run([*kdamon, "stop"], env=env, capture_output=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--guest", action="store_true", help="also measure in a debian-6.12 TCG guest")
    ap.add_argument("--in-guest", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.in_guest:
        guest_part()
        return
    host_part()
    if args.guest:
        from kdamon.vm import run

        print("== guest: a 1,000-region kdamond watched by kdamon show --watch --json")
        lines: list[str] = []
        result = run(
            ["python3", str(Path(__file__).resolve()), "--in-guest"],
            kernel="debian-6.12",
            timeout=900,
            output=lambda line: lines.append(line[len(MARK) :]) if line.startswith(MARK) else None,
        )
        if result.exit_code != 0 or not lines:
            raise SystemExit(f"the guest run failed (exit {result.exit_code}); console log {result.console_log}")
        print("\n".join(lines))


if __name__ == "__main__":
    main()
