"""Ingest speed of DAMON trace output: trace_pipe text vs per-CPU trace_pipe_raw pages.

Synthesises N damon_aggregated events (default 1,000,000: 1000 aggregations of
one target with 1000 regions) in both forms the kernel produces, then parses
each into Snapshot records the way TraceSession does, and prints records/s
(events/s) and the peak Python memory of the parse (tracemalloc, a second pass).

    python3 benchmarks/trace_ingest.py [--events N] [--regions R]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from collections.abc import Callable

from kdamon.trace.assemble import RecordAssembler
from kdamon.trace.events import AGGREGATED, EVENT_SPECS, parse_format
from kdamon.trace.lines import AggregatedLines
from kdamon.trace.pages import PageDecoder
from kdamon.trace.synth import FORMAT_TEXTS, PageWriter, payload, text_line
from kdamon.trace.text import parse_block

PID = 4321
AGGR_NS = 100_000_000


def synthesise(n_events: int, regions: int) -> tuple[list[bytes], list[bytes]]:
    """The same events as 1 MiB chunks of trace_pipe text and as 4 KiB raw pages."""
    fmt = parse_format(FORMAT_TEXTS[AGGREGATED])
    writer = PageWriter()
    text: list[str] = []
    for i in range(n_events):
        aggr, r = divmod(i, regions)
        t = 1_000_000_000 + aggr * AGGR_NS + r * 50
        values = (0, regions, r * 4096 * 16, (r + 1) * 4096 * 16, (r * 7 + aggr) % 21, aggr % 100)
        text.append(text_line(PID, t, AGGREGATED, values))
        fields = dict(zip(EVENT_SPECS[AGGREGATED].fields, values, strict=True))
        writer.add(t, payload(fmt, PID, fields))
    blob = "".join(text).encode()
    chunks = [blob[i : i + (1 << 20)] for i in range(0, len(blob), 1 << 20)]
    return chunks, writer.finish()


def ingest_text(chunks: list[bytes]) -> int:
    """As TraceSession's text reader: whole lines of each read, one block parse, pid set by the filter."""
    import attrs
    import numpy as np

    assembler = RecordAssembler(0, 5000, 100000, PID)
    leftover, records = b"", 0
    for chunk in chunks:
        data = leftover + chunk
        cut = data.rfind(b"\n") + 1
        leftover = data[cut:]
        lines = parse_block(data[:cut])
        lines = attrs.evolve(lines, kdamond=np.full(lines.size, PID, dtype=np.uint64))
        records += len(assembler.feed(lines))
    return records


def ingest_raw(pages: list[bytes]) -> int:
    decoder = PageDecoder([parse_format(FORMAT_TEXTS[AGGREGATED])])
    assembler, records = RecordAssembler(0, 5000, 100000, PID), 0
    batch: list[AggregatedLines] = []
    for i, page in enumerate(pages):
        decoder.decode(page, batch, [])
        if i % 64 == 63:  # TraceSession feeds one poll round at a time
            records += len(assembler.feed(AggregatedLines.concatenate(batch)))
            batch = []
    return records + len(assembler.feed(AggregatedLines.concatenate(batch)))


def measure(name: str, fn: Callable[[], int], n_events: int, size: int) -> float:
    start = time.perf_counter()
    snapshots = fn()
    elapsed = time.perf_counter() - start
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"{name:5s} input {size / 2**20:7.1f} MiB  {snapshots} snapshots  {elapsed:6.2f} s  "
        f"{n_events / elapsed:12,.0f} events/s  {snapshots / elapsed:9,.0f} snapshots/s  "
        f"peak {peak / 2**20:6.1f} MiB"
    )
    return n_events / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--regions", type=int, default=1000)
    args = ap.parse_args()
    t0 = time.perf_counter()
    chunks, pages = synthesise(args.events, args.regions)
    print(f"synthesised {args.events:,} damon_aggregated events in {time.perf_counter() - t0:.1f} s")
    text = measure("text", lambda: ingest_text(chunks), args.events, sum(map(len, chunks)))
    raw = measure("raw", lambda: ingest_raw(pages), args.events, sum(map(len, pages)))
    print(f"raw/text speed ratio: {raw / text:.2f} (the faster one is TraceSession's default)")


if __name__ == "__main__":
    main()
