"""The perf script / trace_pipe text reader: fast path, slow path, snapshot assembly."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable, Generator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kdamon.errors import RecordFormatError
from kdamon.model.snapshot import Snapshot
from kdamon.records import PerfScriptParser, PerfScriptRecords, perf_script
from kdamon.trace import text as trace_text
from kdamon.trace.text import SENTINEL as _SENTINEL
from kdamon.trace.text import _parse_fast, _parse_slow
from kdamon.trace.text import parse_block as _parse_block

FIXTURES = Path(__file__).parent / "fixtures"


FLAGS = ("", " .....", " d..2.", " ..13.")


def perf_line(
    time_us: int,
    tid: int,
    nr: int,
    start: int,
    end: int,
    nacc: int,
    age: int,
    *,
    kdamond: int = 0,
    pid: int = 3340,
    cpu: int = 2,
    flags: str = "",
) -> str:
    return (
        f"       kdamond.{kdamond}  {pid} [{cpu:03d}]{flags}  {time_us // 10**6:5d}.{time_us % 10**6:06d}: "
        f"damon:damon_aggregated: target_id={tid} nr_regions={nr} {start}-{end}: {nacc} {age}\n"
    )


def snapshot_lines(
    time_us: int,
    tid: int,
    regions: list[tuple[int, int, int, int]],
    *,
    kdamond: int = 0,
    pid: int = 3340,
    flag_step: int = 0,
) -> list[str]:
    return [
        perf_line(
            time_us + i,
            tid,
            len(regions),
            *region,
            kdamond=kdamond,
            pid=pid,
            flags=FLAGS[(i * flag_step) % len(FLAGS)] if flag_step else "",
        )
        for i, region in enumerate(regions)
    ]


def summary(snapshots: list[Snapshot]) -> list[tuple[int, tuple[int, int, int], list[tuple[int, ...]]]]:
    return [(s.time_ns, s.target, s.regions.tolist()) for s in snapshots]


def parse_all(text: bytes, pieces: int = 1) -> tuple[list[Snapshot], bool]:
    parser = PerfScriptParser()
    out: list[Snapshot] = []
    step = max(len(text) // pieces, 1)
    for pos in range(0, len(text), step):
        out.extend(parser.feed(text[pos : pos + step]))
    out.extend(parser.finish())
    return out, parser.truncated


def test_the_fixture_is_cut_into_snapshots_per_target() -> None:
    source = PerfScriptRecords(FIXTURES / "perf_script.txt", sample_us=5000, aggr_us=100000)
    snapshots = list(source.snapshots())
    assert [(s.time_ns, s.target_idx, s.regions.size) for s in snapshots] == [
        (4361_046380_000, 0, 3),
        (4361_046383_000, 1, 2),
        (4361_146380_000, 0, 2),
        (4361_146382_000, 1, 2),
    ]
    assert snapshots[0].regions.tolist()[2] == (140737488289792, 140737488355328, 20, 1)
    assert snapshots[0].max_nr_accesses == 20
    assert source.truncated is False
    model = list(source)
    assert model[3].regions[1]["nr_accesses"] == 0 and model[3].aggr_us == 100000


def test_the_standard_perf_format_takes_the_fast_path() -> None:
    block = (FIXTURES / "perf_script.txt").read_bytes()
    fast = _parse_fast(block)
    assert fast is not None
    slow = _parse_slow(block.split(b"\n"))
    for name in ("kdamond", "time_ns", "target", "nr_regions"):
        assert getattr(fast, name).tolist() == getattr(slow, name).tolist()
    assert fast.regions.tolist() == slow.regions.tolist()


@pytest.mark.parametrize(
    "text",
    [
        "kdamond.x xxxx xxxx 1.100000: damon:damon_aggregated: target_id=None nr_regions=1 4096-8192: 1 2\n",
        "kdamond.x xxxx xxxx 1.100000: damon:damon_aggregated: target_id=0 nr_regions=1 0-0: -1 -1\n",
        "something else entirely\n",
    ],
)
def test_irregular_blocks_leave_the_fast_path(text: str) -> None:
    assert _parse_fast(text.encode()) is None


def test_trace_pipe_lines_with_varying_flags() -> None:
    block = (FIXTURES / "trace_pipe.txt").read_bytes()
    fast = _parse_fast(block)
    assert fast is not None
    assert fast.regions.tolist() == _parse_slow(block.split(b"\n")).regions.tolist()
    snapshots = list(PerfScriptRecords(FIXTURES / "trace_pipe.txt").snapshots())
    assert summary(snapshots) == [
        (4361_046380_000, (0, 0, 0), [(4194304, 8388608, 2, 31), (8388608, 12582912, 0, 70)]),
        (4361_146380_000, (0, 0, 0), [(4194304, 8388608, 4, 32), (8388608, 12582912, 1, 71)]),
    ]


def test_other_events_and_kdamonds_are_sorted_out() -> None:
    snapshots = list(PerfScriptRecords(FIXTURES / "perf_script_mixed.txt").snapshots())
    assert summary(snapshots) == [
        (4361_046380_000, (0, 0, 0), [(4194304, 8388608, 2, 31), (8388608, 12582912, 0, 70)]),
        (4361_046390_000, (1, 0, 0), [(4096, 8192, 7, 1)]),
        (4361_146380_000, (0, 0, 0), [(4194304, 12582912, 1, 32)]),
    ]


def test_kernels_without_age_and_raw_target_ids() -> None:
    (only,) = PerfScriptRecords(FIXTURES / "perf_script_no_age.txt").snapshots()
    assert only.target_idx == 18446623435582458880
    assert only.time_ns == 5678_123456_000
    assert only.regions.tolist() == [(4194304, 44421120, 0, 0), (44421120, 48615424, 9, 0)]


def test_damo_written_text_drops_the_placeholder_snapshot() -> None:
    source = PerfScriptRecords(FIXTURES / "perf_script_damo_written.txt")
    assert summary(list(source.snapshots())) == [
        (1_100_000_000, (0, 0, 0), [(4194304, 8388608, 3, 2), (8388608, 12582912, 0, 7)])
    ]
    assert source.truncated is False


def test_a_cut_off_final_snapshot_is_dropped_and_reported(tmp_path: Path) -> None:
    lines = snapshot_lines(1_000_000, 0, [(0, 4096, 1, 1), (4096, 8192, 2, 2)])
    lines += snapshot_lines(1_100_000, 0, [(0, 4096, 3, 3), (4096, 8192, 4, 4)])
    path = tmp_path / "cut.txt"
    path.write_text("".join(lines)[:-30])
    source = PerfScriptRecords(path)
    assert [s.time_ns for s in source.snapshots()] == [1_000_000_000]
    assert source.truncated


def test_nanosecond_timestamps() -> None:
    text = b"kdamond.0 1 [000] 12.123456789: damon:damon_aggregated: target_id=0 nr_regions=1 4096-8192: 1 2\n"
    (only,), _ = parse_all(text)
    assert only.time_ns == 12_123_456_789


def test_lost_lines_close_the_snapshot_early() -> None:
    lines = snapshot_lines(1_000_000, 0, [(0, 4096, 1, 1), (4096, 8192, 2, 2), (8192, 12288, 3, 3)])
    lines = lines[:2] + snapshot_lines(1_100_000, 0, [(0, 8192, 5, 5)])  # the third region was lost
    snapshots, truncated = parse_all("".join(lines).encode())
    assert [s.regions.size for s in snapshots] == [2, 1]
    assert not truncated


def test_a_field_that_reads_as_the_sentinel_leaves_the_fast_path_and_is_read_exactly() -> None:
    sentinel = int(_SENTINEL)
    regions = [(sentinel - 4097, sentinel, 1, 2), (sentinel, sentinel + 4095, 3, 4)]
    text = "".join(snapshot_lines(1_000_000, 0, regions)).encode()
    assert _parse_fast(text) is None
    (only,), truncated = parse_all(text)
    assert only.regions.tolist() == regions
    assert not truncated


@pytest.mark.parametrize("end, nacc", [(2**64, 1), (10**23, 1), (8192, 2**32)])
def test_a_number_too_big_for_its_field_is_refused_not_clamped(end: int, nacc: int) -> None:
    # numpy.fromstring saturates a u64 overflow and a u32 field would wrap: both must be said.
    text = "".join(snapshot_lines(1_000_000, 0, [(4096, end, nacc, 2)])).encode()
    assert _parse_fast(text) is None
    with pytest.raises(RecordFormatError, match="too big for its field"):
        parse_all(text)


def test_the_largest_numbers_that_fit_are_read_exactly() -> None:
    regions = [(4096, 2**64 - 1, 2**32 - 1, 2**32 - 1)]
    (only,), _ = parse_all("".join(snapshot_lines(1_000_000, 0, regions)).encode())
    assert only.regions.tolist() == regions


def test_lines_that_spell_the_event_differently_are_read_exactly() -> None:
    perf = perf_line(1_000_000, 0, 2, 4096, 8192, 1, 2)
    trace_pipe = perf_line(1_000_001, 0, 2, 8192, 12288, 3, 4)
    trace_pipe = trace_pipe.replace("damon:damon_aggregated", "damon_aggregated")
    for text in (perf + trace_pipe, trace_pipe + perf):
        block = text.encode()
        parsed, slow = _parse_block(block), _parse_slow(block.split(b"\n"))
        assert parsed.regions.tolist() == slow.regions.tolist() != []
        for name in ("kdamond", "time_ns", "target", "nr_regions"):
            assert np.array_equal(getattr(parsed, name), getattr(slow, name)), name


Summary = list[tuple[int, tuple[int, int, int], list[tuple[int, int, int, int]]]]


def two_kdamonds(*, flag_step: int = 0, other_event: bool = False) -> tuple[bytes, Summary]:
    """Two kdamonds' snapshots, their lines interleaved; with another event's line among them if asked."""
    lines: list[str] = []
    expected: Summary = []
    for step in range(4):
        time_us = 5_000_000 + step * 100_000
        pair = []
        for kdamond in (0, 1):
            regions = [(4096 * (i + 1), 4096 * (i + 2), i + kdamond, step + i) for i in range(5)]
            pair.append(snapshot_lines(time_us, 0, regions, kdamond=kdamond, pid=100 + kdamond, flag_step=flag_step))
            expected.append((time_us * 1000, (kdamond, 0, 0), regions))
        lines += [line for both in zip(*pair, strict=True) for line in both]
        if other_event:
            other = f"       kdamond.0  100 [002]  {time_us // 10**6:5d}.999999: damon:damos_before_apply: ctx_idx=0\n"
            lines.append(other)
    return "".join(lines).encode(), expected


@pytest.mark.parametrize("block_bytes", [40, 137, 1000, 1 << 20])
@pytest.mark.parametrize(("flag_step", "other_event"), [(0, False), (1, False), (0, True)])
def test_a_file_read_in_blocks_that_cut_lines_gives_every_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block_bytes: int, flag_step: int, other_event: bool
) -> None:
    text, expected = two_kdamonds(flag_step=flag_step, other_event=other_event)
    path = tmp_path / "perf.txt"
    path.write_bytes(text.rstrip(b"\n"))  # the last line without its newline, too
    monkeypatch.setattr(perf_script, "_BLOCK_BYTES", block_bytes)
    source = PerfScriptRecords(path)
    assert sorted(summary(list(source.snapshots()))) == sorted(expected)
    assert source.truncated is False


def test_a_last_line_without_its_newline_is_read_exactly(tmp_path: Path) -> None:
    # the fast path needs every line to end in a newline: without one, a last
    # field that reads as the sentinel would pass for a line end (the last
    # field is a 32-bit age, which the sentinel exceeds: such a line is refused)
    regions = [(4096, 8192, 1, 2), (8192, 12288, 3, 4)]
    path = tmp_path / "perf.txt"
    path.write_text("".join(snapshot_lines(1_000_000, 0, regions)).rstrip("\n"))
    (only,) = PerfScriptRecords(path).snapshots()
    assert only.time_ns == 1_000_000_000 and only.regions.tolist() == regions
    regions[-1] = (8192, 12288, 3, int(_SENTINEL))
    path.write_text("".join(snapshot_lines(1_000_000, 0, regions)).rstrip("\n"))
    with pytest.raises(RecordFormatError, match="too big"):
        list(PerfScriptRecords(path).snapshots())


def test_blocks_cut_mid_line_stay_on_the_fast_paths_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text, expected = two_kdamonds()
    path = tmp_path / "perf.txt"
    path.write_bytes(text)
    declined: list[str] = []
    for name in ("parse_declined", "_fields_before_ends"):  # the slow path, the fast path's slower half
        original = getattr(trace_text, name)

        def counted(*args: object, name: str = name, original: Callable[..., object] = original) -> object:
            declined.append(name)
            return original(*args)

        monkeypatch.setattr(trace_text, name, counted)
    monkeypatch.setattr(perf_script, "_BLOCK_BYTES", 1000)  # about 7 lines: most blocks end inside a line
    assert sorted(summary(list(PerfScriptRecords(path).snapshots()))) == sorted(expected)
    assert declined == []


def test_closing_the_snapshots_early_stops_the_worker_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "perf.txt"
    path.write_bytes(two_kdamonds()[0])
    monkeypatch.setattr(perf_script, "_BLOCK_BYTES", 1000)

    def workers() -> list[threading.Thread]:
        return [thread for thread in threading.enumerate() if thread.name.startswith("kdamon-perf-script")]

    snapshots = PerfScriptRecords(path).snapshots()
    assert isinstance(snapshots, Generator)
    next(snapshots)
    assert workers()
    snapshots.close()
    assert workers() == []


def test_a_line_that_claims_no_regions_is_dropped() -> None:
    lines = snapshot_lines(1_000_000, 0, [(0, 4096, 1, 1), (4096, 8192, 2, 2)])
    lines.append(perf_line(1_050_000, 0, 0, 8192, 12288, 3, 3))
    lines += snapshot_lines(1_100_000, 0, [(0, 8192, 4, 4), (8192, 12288, 5, 5)])
    result: list[tuple[list[Snapshot], bool]] = []
    reader = threading.Thread(target=lambda: result.append(parse_all("".join(lines).encode())), daemon=True)
    reader.start()
    reader.join(timeout=10)
    assert result, "the parser loops on nr_regions=0"
    snapshots, truncated = result[0]
    assert [s.regions.tolist() for s in snapshots] == [
        [(0, 4096, 1, 1), (4096, 8192, 2, 2)],
        [(0, 8192, 4, 4), (8192, 12288, 5, 5)],
    ]
    assert not truncated


def _in_address_order(rows: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """Regions laid out one after the other from the first start, gaps kept: the kernel's order."""
    out, start = [], rows[0][0]
    for gap, size, n, a in rows:
        start += gap % 2**20
        out.append((start, start + size, n, a))
        start += size
    return out


region_lists = st.lists(
    st.tuples(st.integers(0, 2**46), st.integers(1, 2**30), st.integers(0, 400), st.integers(0, 10**6)),
    min_size=1,
    max_size=6,
).map(_in_address_order)


@settings(max_examples=60, deadline=None)
@given(
    plan=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2), region_lists), min_size=1, max_size=8),
    pieces=st.integers(1, 7),
    flag_step=st.integers(0, 3),
    block_bytes=st.integers(16, 600),
)
def test_any_split_of_the_text_gives_the_same_snapshots(
    plan: list[tuple[int, int, list[tuple[int, int, int, int]]]], pieces: int, flag_step: int, block_bytes: int
) -> None:
    lines: list[str] = []
    expected = []
    for step, (kdamond, tid, regions) in enumerate(plan):
        time_us = 5_000_000 + step * 100_000
        lines += snapshot_lines(time_us, tid, regions, kdamond=kdamond, pid=100 + kdamond, flag_step=flag_step)
        expected.append((time_us * 1000, (kdamond, 0, tid), regions))
    text = "".join(lines).encode()
    whole, truncated = parse_all(text)
    assert not truncated
    assert sorted(summary(whole)) == sorted(expected)
    split, _ = parse_all(text, pieces)
    assert sorted(summary(split)) == sorted(expected)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "perf.txt"
        path.write_bytes(text)
        default_block_bytes, perf_script._BLOCK_BYTES = perf_script._BLOCK_BYTES, block_bytes
        try:
            read = list(PerfScriptRecords(path).snapshots())
        finally:
            perf_script._BLOCK_BYTES = default_block_bytes
    assert sorted(summary(read)) == sorted(expected)
    slow = _parse_slow(text.split(b"\n"))
    fast = _parse_fast(text)
    if fast is None:  # only an address that reads as the line-end sentinel sends the fast path away
        assert any(int(_SENTINEL) in region[:2] for _, _, regions in plan for region in regions)
        return
    assert fast.regions.tolist() == slow.regions.tolist()
    for name in ("kdamond", "time_ns", "target", "nr_regions"):
        assert np.array_equal(getattr(fast, name), getattr(slow, name)), name
