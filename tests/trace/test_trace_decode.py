"""Decoding DAMON trace output: recorded text lines and synthesised ring-buffer pages, and their assembly."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from kdamon.model import IntervalsTune, RegionState, SchemeApply
from kdamon.model.snapshot import Snapshot
from kdamon.trace.assemble import RawEvent, RecordAssembler
from kdamon.trace.events import (
    AGGREGATED,
    BEFORE_APPLY,
    EVENT_SPECS,
    INTERVALS_TUNE,
    EventFormat,
    EventSpec,
    Field,
    RawDecoder,
    parse_format,
)
from kdamon.trace.lines import AggregatedLines
from kdamon.trace.pages import PageDecoder
from kdamon.trace.synth import EVENT_IDS, FORMAT_TEXTS, PageWriter, pages, payload, text_line
from kdamon.trace.text import TextParser, parse_block

DECODER = PageDecoder([parse_format(FORMAT_TEXTS[n]) for n in EVENT_SPECS])


def decode(pages: list[bytes], decoder: PageDecoder = DECODER) -> tuple[list[RawEvent], list[int]]:
    """Every event of the pages as ``RawEvent`` tuples (damon_aggregated ones too), and each page's lost count."""
    parts: list[AggregatedLines] = []
    others: list[RawEvent] = []
    lost = [decoder.decode(page, parts, others) for page in pages]
    lines = AggregatedLines.concatenate(parts)
    aggregated: list[RawEvent] = [
        (t, AGGREGATED, (pid, tid, nr, *region))
        for pid, t, tid, nr, region in zip(
            lines.kdamond.tolist(),
            lines.time_ns.tolist(),
            lines.target.tolist(),
            lines.nr_regions.tolist(),
            lines.regions.tolist(),
            strict=True,
        )
    ]
    return sorted(aggregated + others, key=lambda e: e[0]), lost


def lines_of(events: list[RawEvent]) -> AggregatedLines:
    """damon_aggregated ``RawEvent`` tuples as the columns decoders produce."""
    rows = [(vals[0], t, *vals[1:]) for t, name, vals in events if name == AGGREGATED]
    table = np.array(rows, dtype=np.uint64).reshape(len(rows), 8)
    from kdamon.model.snapshot import regions_array

    return AggregatedLines(
        table[:, 0],
        table[:, 1],
        table[:, 2],
        table[:, 3],
        regions_array(table[:, 4], table[:, 5], table[:, 6], table[:, 7]),
    )


# Lines as the kernel prints them (the first one recorded in a 6.12 guest),
# with and without the irq-info flags column and with the tgid column.
RECORDED = [
    "       kdamond.0-231     [001] .....    12.345678: damon_aggregated: target_id=0 nr_regions=10 4194304-44421120: 0 1",
    "       kdamond.0-231     [001]    12.445678: damon_aggregated: target_id=0 nr_regions=10 4194304-44421120: 20 2",
    " kdamond.1-232 (    232) [000] d..1. 99.000001: damos_before_apply: ctx_idx=0 scheme_idx=1 target_idx=0 nr_regions=3 4096-8192: 5 7",
    "       kdamond.0-231     [001] ..... 13.000000: damon_monitor_intervals_tune: sample_us=2500",
    "          <idle>-0       [000] d.h1. 13.1: sched_switch: prev_comm=swapper",
    "# tracer: nop",
]


def test_text_lines() -> None:
    parser = TextParser()
    events = list(parser.parse_lines(RECORDED))
    assert events == [
        (99_000_001_000, BEFORE_APPLY, (232, 0, 1, 0, 4096, 8192, 5, 7, 3)),
        (13_000_000_000, INTERVALS_TUNE, (231, 2500)),
    ]
    aggregated = parse_block("\n".join(RECORDED[:2]).encode() + b"\n")
    assert aggregated.time_ns.tolist() == [12_345_678_000, 12_445_678_000]
    assert aggregated.regions.tolist() == [(4194304, 44421120, 0, 1), (4194304, 44421120, 20, 2)]
    assert aggregated.target.tolist() == [0, 0] and aggregated.nr_regions.tolist() == [10, 10]
    assert parser.parse_line("x-1 [000] ..... 1.0: damos_before_apply: garbage") is None
    assert parser.unparsed == 1


def test_format_parsing_and_decoder_layout() -> None:
    fmt = parse_format(FORMAT_TEXTS[BEFORE_APPLY])
    assert fmt.id == EVENT_IDS[BEFORE_APPLY]
    assert fmt.fields["target_idx"] == Field("target_idx", 16, 8, False)
    assert fmt.fields["common_pid"].signed
    dec = RawDecoder.build(fmt, EVENT_SPECS[BEFORE_APPLY])
    assert dec.struct.size == 52


def test_decoder_refuses_a_layout_it_does_not_know() -> None:
    fmt = parse_format(FORMAT_TEXTS[AGGREGATED].replace("nr_accesses", "nr_accesses_bp"))
    with pytest.raises(Exception, match="lacks fields"):
        RawDecoder.build(fmt, EVENT_SPECS[AGGREGATED])


def synth(events: list[tuple[int, str, tuple[int, ...]]], pid: int = 231) -> list[bytes]:
    return pages(events, pid)


def test_pages_round_trip_with_time_extends_and_page_breaks() -> None:
    events = []
    t = 5_000_000_000
    for i in range(300):  # > one page
        t += 10 if i % 50 else 2**28 + 3  # periodic deltas that need a time-extend record
        events.append((t, AGGREGATED, (i % 3, 10, i * 4096, i * 4096 + 4096, i % 21, i)))
    events.append((t + 1, BEFORE_APPLY, (0, 2, 1, 0, 4096, 3, 4, 10)))
    events.append((t + 2, INTERVALS_TUNE, (1234,)))
    pages = synth(events)
    assert len(pages) > 1 and all(len(p) == 4096 for p in pages)
    out, lost = decode(pages)
    assert lost == [0] * len(pages)
    assert [(ts, name, vals[1:]) for ts, name, vals in out] == events
    assert {vals[0] for _, _, vals in out} == {231}


def test_long_events_padding_and_lost_counts() -> None:
    big = EventFormat(
        "big",
        9,
        {
            "common_type": Field("common_type", 0, 2, False),
            "common_pid": Field("common_pid", 4, 4, True),
            "x": Field("x", 8, 8, False),
            "y": Field("y", 128, 8, False),
        },
    )
    decoder = PageDecoder([])
    decoder.raw[9] = RawDecoder.build(big, EventSpec("big", ("x", "y")))
    writer = PageWriter()
    writer.add(100, payload(big, 7, {"x": 1, "y": 2}))  # > 112 bytes: type_len 0 with a length word
    writer.lose(42)
    writer.add(200, payload(big, 7, {"x": 3, "y": 4}))
    first, second = writer.finish()
    out, lost = decode([first, second], decoder)
    assert lost == [0, 42]
    assert out == [(100, "big", (7, 1, 2)), (200, "big", (7, 3, 4))]
    # a padding record (type 29) in front of the event is skipped, a null one ends the page
    page = bytearray(second)
    data_len = struct.unpack_from("<Q", page, 8)[0] & ((1 << 30) - 1)
    body = bytes(page[16 : 16 + data_len])
    # padding: header (delta 1) + length word 12 = 16 bytes in all; then a null padding
    padded = struct.pack("<II", 29 | (1 << 5), 12) + b"\0" * 8 + body + struct.pack("<I", 29)
    page[16 : 16 + len(padded)] = padded
    struct.pack_into("<Q", page, 8, len(padded))
    out, _ = decode([bytes(page)], decoder)
    assert out == [(200, "big", (7, 3, 4))]


def test_assembler_groups_targets_and_drops_incomplete_snapshots() -> None:
    asm = RecordAssembler(kdamond_idx=2, sample_us=5000, aggr_us=100_000, pid=231)
    ev: list[RawEvent] = []
    for tid in (0, 1):
        for r in range(3):
            ev.append((10 + r, AGGREGATED, (231, tid, 3, r * 10, r * 10 + 10, r, tid)))
    ev.append((20, AGGREGATED, (999, 0, 3, 0, 10, 0, 0)))  # another kdamond: ignored
    ev.append((30, AGGREGATED, (231, 0, 3, 0, 10, 1, 1)))  # only 1 of 3 regions arrive...
    ev.append((40, AGGREGATED, (231, 0, 3, 0, 10, 2, 2)))  # ...the next aggregation starts over
    ev.append((45, INTERVALS_TUNE, (231, 2500)))
    ev.append((50, BEFORE_APPLY, (231, 0, 1, 0, 0, 10, 2, 3, 3)))
    out = list(asm.feed(lines_of(ev), [e for e in ev if e[1] != AGGREGATED]))
    snaps = [r for r in out if isinstance(r, Snapshot)]
    assert [(s.target_idx, s.kdamond_idx, len(s.regions)) for s in snaps] == [(0, 2, 3), (1, 2, 3)]
    assert list(snaps[0].states())[1] == RegionState(10, 20, 1, 0) and snaps[0].max_nr_accesses == 20
    assert out[-2] == IntervalsTune(45, 2500, 50_000, 2)
    assert out[-1] == SchemeApply(50, 0, 1, 0, RegionState(0, 10, 2, 3))
    assert (asm.sample_us, asm.aggr_us) == (2500, 50_000)
    assert asm.incomplete == 1
    asm.finish()
    assert asm.incomplete == 2


def test_text_and_raw_forms_give_the_same_records() -> None:
    events = [(1_000_000_000 + i * 1000, AGGREGATED, (0, 4, i * 4096, i * 4096 + 4096, i, 0)) for i in range(8)]
    text = "".join(text_line(231, t, name, vals) for t, name, vals in events).encode()
    from_text = list(RecordAssembler(0, 5000, 100_000).feed(parse_block(text)))
    raw: list[AggregatedLines] = []
    for page in synth(events):
        DECODER.decode(page, raw, [])
    from_raw = list(RecordAssembler(0, 5000, 100_000).feed(AggregatedLines.concatenate(raw)))
    assert from_text == from_raw and len(from_raw) == 2
