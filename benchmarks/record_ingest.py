"""Record ingest speed and memory: perf script text and kdamon's record file.

Generates N damon_aggregated events (default 1,000 snapshots of 1,000
regions: 1,000,000 lines) as ``perf script`` text with realistic virtual
addresses (heap, mmap and stack areas), writes the same snapshots as a kdamon
record file, then ingests each file in a fresh Python process and prints
lines/s (on wall-clock time, and on the process's CPU time, which is what a
busy shared machine distorts least), the peak RSS of that process (VmHWM) and the ratios to the peer's
(damo's) figures for the same input: 49.6 k lines/s, 4.7 GB peak.

Cases (each in its own process):
  perf_script keep    parse into Snapshot and keep them all in memory
  perf_script stream  parse and drop each snapshot (the streaming footprint)
  kdamon keep         read the record file, keeping all Snapshot
  kdamon stream       read and drop
  kdamon objects      read into model Snapshot objects (one RegionState a region);
                      what the Python API costs, not an ingest case of the target
  baseline            import kdamon.records and do nothing (the floor of the RSS)

    python3 benchmarks/record_ingest.py [--snapshots 1000] [--regions 1000] [--keep-files DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PEER_LINES_PER_S = 49_600
PEER_PEAK_BYTES = 4.7e9
TARGET_SPEEDUP = 50
TARGET_MEMORY_FRACTION = 20

AREAS = (0x5555_5555_4000, 0x7F12_3456_0000, 0x7FFC_0000_0000)
AGGR_NS = 100_000_000


def generate(perf_path: Path, record_path: Path, snapshots: int, regions: int) -> None:
    """Write the same snapshots as perf script text and as a kdamon record."""
    from kdamon.model.snapshot import Snapshot, regions_array
    from kdamon.records.types import RecordMeta
    from kdamon.records.writer import RecordWriter

    rnd = random.Random(42)
    per_area = [regions // 3, regions // 3, regions - 2 * (regions // 3)]
    meta = RecordMeta(producer="benchmark", sample_us=5000, aggr_us=100000, ops="vaddr", targets=({"pid": 3340},))
    with open(perf_path, "w") as text, RecordWriter(record_path, meta, flush_every=0) as writer:
        for snap in range(snapshots):
            base_ns = 4361_046380_000 + snap * AGGR_NS
            starts: list[int] = []
            ends: list[int] = []
            for area, count in zip(AREAS, per_area, strict=True):
                addr = area
                for _ in range(count):
                    starts.append(addr)
                    addr += 4096 * rnd.randint(1, 512)
                    ends.append(addr)
            accesses = [rnd.randint(0, 20) for _ in range(regions)]
            ages = [rnd.randint(0, 300) for _ in range(regions)]
            lines = []
            for i in range(regions):
                t_us = (base_ns + i * 1000) // 1000
                lines.append(
                    f"       kdamond.0  3340 [002] {t_us // 1_000_000:5d}.{t_us % 1_000_000:06d}: damon:damon_aggregated: "
                    f"target_id=0 nr_regions={regions} {starts[i]}-{ends[i]}: {accesses[i]} {ages[i]}\n"
                )
            text.write("".join(lines))
            snapshot_ns = (base_ns // 1000) * 1000
            writer.append(Snapshot(snapshot_ns, 0, 0, 0, regions_array(starts, ends, accesses, ages), 5000, 100000))


def _vm_hwm_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def run_case(fmt: str, mode: str, path: str) -> None:
    """Child process: ingest one file and print a JSON line of figures."""
    from kdamon.records.detect import open_any

    start, cpu_start = time.perf_counter(), time.process_time()
    lines = snapshots = 0
    kept: list[object] = []
    if mode != "baseline":
        source = open_any(path)
        if mode == "objects":
            for snapshot in source:
                kept.append(snapshot)
                lines += len(snapshot.regions)
                snapshots += 1
        else:
            for arrays in source.snapshots():
                if mode == "keep":
                    kept.append(arrays)
                lines += arrays.regions.shape[0]
                snapshots += 1
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    print(
        json.dumps(
            {
                "lines": lines,
                "snapshots": snapshots,
                "seconds": elapsed,
                "cpu_seconds": cpu,
                "peak_bytes": _vm_hwm_bytes(),
            }
        )
    )


def measure(fmt: str, mode: str, path: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", fmt, mode, str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    figures: dict[str, float] = json.loads(out.splitlines()[-1])
    return figures


def report(fmt: str, mode: str, figures: dict[str, float]) -> None:
    peak_mb = figures["peak_bytes"] / 1e6
    if mode == "baseline":
        print(f"{'baseline (import only)':24s} {'':>14s} {'':>9s} {'':>14s} {peak_mb:9.1f} MB")
        return
    rate = figures["lines"] / figures["seconds"]
    cpu_rate = figures["lines"] / max(figures["cpu_seconds"], 1e-9)
    speedup = rate / PEER_LINES_PER_S
    memory_ratio = PEER_PEAK_BYTES / figures["peak_bytes"]
    if mode == "objects":
        ok = "(model objects: beside the target, which is for ingest)"
    else:
        ok = "ok" if speedup >= TARGET_SPEEDUP and memory_ratio >= TARGET_MEMORY_FRACTION else "BELOW TARGET"
    print(
        f"{fmt + ' ' + mode:24s} {rate:14,.0f} {figures['seconds']:8.3f}s {cpu_rate:14,.0f} {peak_mb:9.1f} MB"
        f"   x{speedup:6.1f} faster  1/{memory_ratio:5.1f} memory  {ok}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--snapshots", type=int, default=1000)
    parser.add_argument("--regions", type=int, default=1000)
    parser.add_argument("--keep-files", type=Path, help="write the generated files here and keep them")
    parser.add_argument("--child", nargs=3, metavar=("FORMAT", "MODE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_case(*args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep_files or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        perf_path, record_path = folder / "aggregated.perf_script", folder / "aggregated.kdr"
        started = time.perf_counter()
        generate(perf_path, record_path, args.snapshots, args.regions)
        print(
            f"generated {args.snapshots * args.regions:,} lines in {time.perf_counter() - started:.1f} s: "
            f"perf script {perf_path.stat().st_size / 1e6:.1f} MB, kdamon record {record_path.stat().st_size / 1e6:.1f} MB"
        )
        print(
            f"peer (damo): {PEER_LINES_PER_S:,} lines/s, peak {PEER_PEAK_BYTES / 1e9:.1f} GB; "
            f"target: x{TARGET_SPEEDUP} faster, 1/{TARGET_MEMORY_FRACTION} of the memory"
        )
        print(f"{'case':24s} {'lines/s':>14s} {'wall':>9s} {'lines/s (cpu)':>14s} {'peak RSS':>12s}")
        cases = [
            ("-", "baseline", record_path),
            ("perf_script", "keep", perf_path),
            ("perf_script", "stream", perf_path),
            ("kdamon", "keep", record_path),
            ("kdamon", "stream", record_path),
            ("kdamon", "objects", record_path),
        ]
        for fmt, mode, path in cases:
            report(fmt, mode, measure(fmt, mode, path))


if __name__ == "__main__":
    main()
