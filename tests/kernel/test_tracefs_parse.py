"""Parsing DAMON trace output: recorded text lines and synthesised ring-buffer pages."""

from __future__ import annotations

import struct

import pytest

from kdamon.kernel.tracefs_format import (
    AGGREGATED, BEFORE_APPLY, EVENT_SPECS, INTERVALS_TUNE, EventFormat, Field, RawDecoder, EventSpec, parse_format,
)
from kdamon.kernel.tracefs_parse import RawEvent, RecordAssembler, TextParser, parse_page
from kdamon.kernel.tracefs_synth import EVENT_IDS, FORMAT_TEXTS, PageWriter, payload, text_line
from kdamon.model import IntervalsTune, RegionState, SchemeApply, Snapshot

DECODERS = {
    fmt.id: RawDecoder.build(fmt, EVENT_SPECS[fmt.name])
    for fmt in (parse_format(FORMAT_TEXTS[n]) for n in EVENT_SPECS)
}

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
        (12_345_678_000, AGGREGATED, (231, 0, 10, 4194304, 44421120, 0, 1)),
        (12_445_678_000, AGGREGATED, (231, 0, 10, 4194304, 44421120, 20, 2)),
        (99_000_001_000, BEFORE_APPLY, (232, 0, 1, 0, 4096, 8192, 5, 7, 3)),
        (13_000_000_000, INTERVALS_TUNE, (231, 2500)),
    ]
    assert parser.parse_line("x-1 [000] ..... 1.0: damon_aggregated: garbage") is None
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
    writer = PageWriter()
    for t, name, values in events:
        fmt = parse_format(FORMAT_TEXTS[name])
        writer.add(t, payload(fmt, pid, dict(zip(EVENT_SPECS[name].fields, values))))
    return writer.finish()


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
    out: list[RawEvent] = []
    for page in pages:
        assert parse_page(page, DECODERS, out) == 0
    assert [(ts, name, vals[1:]) for ts, name, vals in out] == events
    assert {vals[0] for _, _, vals in out} == {231}


def test_long_events_padding_and_lost_counts() -> None:
    big = EventFormat("big", 9, {"common_type": Field("common_type", 0, 2, False),
                                 "common_pid": Field("common_pid", 4, 4, True),
                                 "x": Field("x", 8, 8, False), "y": Field("y", 128, 8, False)})
    dec = RawDecoder.build(big, EventSpec("big", ("x", "y")))
    writer = PageWriter()
    writer.add(100, payload(big, 7, {"x": 1, "y": 2}))  # > 112 bytes: type_len 0 with a length word
    writer.lose(42)
    writer.add(200, payload(big, 7, {"x": 3, "y": 4}))
    first, second = writer.finish()
    out: list[RawEvent] = []
    assert parse_page(first, {9: dec}, out) == 0
    assert parse_page(second, {9: dec}, out) == 42
    assert out == [(100, "big", (7, 1, 2)), (200, "big", (7, 3, 4))]
    # a padding record (type 29) in front of the event is skipped, a null one ends the page
    page = bytearray(second)
    data_len = struct.unpack_from("<Q", page, 8)[0] & ((1 << 30) - 1)
    body = bytes(page[16:16 + data_len])
    # padding: header (delta 1) + length word 12 = 16 bytes in all; then a null padding
    padded = struct.pack("<II", 29 | (1 << 5), 12) + b"\0" * 8 + body + struct.pack("<I", 29)
    page[16:16 + len(padded)] = padded
    struct.pack_into("<Q", page, 8, len(padded))
    out.clear()
    parse_page(bytes(page), {9: dec}, out)
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
    out = list(asm.feed(ev))
    snaps = [r for r in out if isinstance(r, Snapshot)]
    assert [(s.target_idx, s.kdamond_idx, len(s.regions)) for s in snaps] == [(0, 2, 3), (1, 2, 3)]
    assert snaps[0].regions[1] == RegionState(10, 20, 1, 0) and snaps[0].max_nr_accesses == 20
    assert out[-2] == IntervalsTune(45, 2500)
    assert out[-1] == SchemeApply(50, 0, 1, 0, RegionState(0, 10, 2, 3))
    assert (asm.sample_us, asm.aggr_us) == (2500, 50_000)
    assert asm.incomplete == 1
    asm.finish()
    assert asm.incomplete == 2


def test_text_and_raw_forms_give_the_same_records() -> None:
    events = [(1_000_000_000 + i * 1000, AGGREGATED, (0, 4, i * 4096, i * 4096 + 4096, i, 0)) for i in range(8)]
    lines = [text_line(231, t, name, vals) for t, name, vals in events]
    from_text = list(RecordAssembler(0, 5000, 100_000).feed(TextParser().parse_lines(lines)))
    raw: list[RawEvent] = []
    for page in synth(events):
        parse_page(page, DECODERS, raw)
    from_raw = list(RecordAssembler(0, 5000, 100_000).feed(raw))
    assert from_text == from_raw and len(from_raw) == 2
