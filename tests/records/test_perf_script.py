"""The perf script / trace_pipe text reader: fast path, slow path, snapshot assembly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kdamon.records import PerfScriptParser, PerfScriptRecords, SnapshotArrays
from kdamon.records.perf_script import _parse_fast, _parse_slow

FIXTURES = Path(__file__).parent / "fixtures"


FLAGS = ("", " .....", " d..2.", " ..13.")


def perf_line(time_us: int, tid: int, nr: int, start: int, end: int, nacc: int, age: int, *, kdamond: int = 0,
              pid: int = 3340, cpu: int = 2, flags: str = "") -> str:
    return (f"       kdamond.{kdamond}  {pid} [{cpu:03d}]{flags}  {time_us // 10**6:5d}.{time_us % 10**6:06d}: "
            f"damon:damon_aggregated: target_id={tid} nr_regions={nr} {start}-{end}: {nacc} {age}\n")


def snapshot_lines(time_us: int, tid: int, regions: list[tuple[int, int, int, int]], *, kdamond: int = 0,
                   pid: int = 3340, flag_step: int = 0) -> list[str]:
    return [
        perf_line(time_us + i, tid, len(regions), *region, kdamond=kdamond, pid=pid,
                  flags=FLAGS[(i * flag_step) % len(FLAGS)] if flag_step else "")
        for i, region in enumerate(regions)
    ]


def summary(snapshots: list[SnapshotArrays]) -> list[tuple[int, tuple[int, int, int], list[tuple[int, ...]]]]:
    return [(s.time_ns, s.target, s.regions.tolist()) for s in snapshots]


def parse_all(text: bytes, pieces: int = 1) -> tuple[list[SnapshotArrays], bool]:
    parser = PerfScriptParser()
    out: list[SnapshotArrays] = []
    step = max(len(text) // pieces, 1)
    for pos in range(0, len(text), step):
        out.extend(parser.feed(text[pos:pos + step]))
    out.extend(parser.finish())
    return out, parser.truncated


def test_the_fixture_is_cut_into_snapshots_per_target() -> None:
    source = PerfScriptRecords(FIXTURES / "perf_script.txt", sample_us=5000, aggr_us=100000)
    snapshots = list(source.arrays())
    assert [(s.time_ns, s.target_idx, s.regions.size) for s in snapshots] == [
        (4361_046380_000, 0, 3), (4361_046383_000, 1, 2), (4361_146380_000, 0, 2), (4361_146382_000, 1, 2),
    ]
    assert snapshots[0].regions.tolist()[2] == (140737488289792, 140737488355328, 20, 1)
    assert snapshots[0].max_nr_accesses == 20
    assert source.truncated is False
    model = list(source)
    assert model[3].regions[1].nr_accesses == 0 and model[3].aggr_us == 100000


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
    snapshots = list(PerfScriptRecords(FIXTURES / "trace_pipe.txt").arrays())
    assert summary(snapshots) == [
        (4361_046380_000, (0, 0, 0), [(4194304, 8388608, 2, 31), (8388608, 12582912, 0, 70)]),
        (4361_146380_000, (0, 0, 0), [(4194304, 8388608, 4, 32), (8388608, 12582912, 1, 71)]),
    ]


def test_other_events_and_kdamonds_are_sorted_out() -> None:
    snapshots = list(PerfScriptRecords(FIXTURES / "perf_script_mixed.txt").arrays())
    assert summary(snapshots) == [
        (4361_046380_000, (0, 0, 0), [(4194304, 8388608, 2, 31), (8388608, 12582912, 0, 70)]),
        (4361_046390_000, (1, 0, 0), [(4096, 8192, 7, 1)]),
        (4361_146380_000, (0, 0, 0), [(4194304, 12582912, 1, 32)]),
    ]


def test_kernels_without_age_and_raw_target_ids() -> None:
    (only,) = PerfScriptRecords(FIXTURES / "perf_script_no_age.txt").arrays()
    assert only.target_idx == 18446623435582458880
    assert only.time_ns == 5678_123456_000
    assert only.regions.tolist() == [(4194304, 44421120, 0, 0), (44421120, 48615424, 9, 0)]


def test_damo_written_text_drops_the_placeholder_snapshot() -> None:
    source = PerfScriptRecords(FIXTURES / "perf_script_damo_written.txt")
    assert summary(list(source.arrays())) == [(1_100_000_000, (0, 0, 0), [(4194304, 8388608, 3, 2), (8388608, 12582912, 0, 7)])]
    assert source.truncated is False


def test_a_cut_off_final_snapshot_is_dropped_and_reported(tmp_path: Path) -> None:
    lines = snapshot_lines(1_000_000, 0, [(0, 4096, 1, 1), (4096, 8192, 2, 2)])
    lines += snapshot_lines(1_100_000, 0, [(0, 4096, 3, 3), (4096, 8192, 4, 4)])
    path = tmp_path / "cut.txt"
    path.write_text("".join(lines)[:-30])
    source = PerfScriptRecords(path)
    assert [s.time_ns for s in source.arrays()] == [1_000_000_000]
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


region_lists = st.lists(
    st.tuples(st.integers(0, 2**46), st.integers(1, 2**30), st.integers(0, 400), st.integers(0, 10**6)),
    min_size=1,
    max_size=6,
).map(lambda rows: [(s, s + size, n, a) for s, size, n, a in rows])


@settings(max_examples=60, deadline=None)
@given(
    plan=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2), region_lists), min_size=1, max_size=8),
    pieces=st.integers(1, 7),
    flag_step=st.integers(0, 3),
)
def test_any_split_of_the_text_gives_the_same_snapshots(
    plan: list[tuple[int, int, list[tuple[int, int, int, int]]]], pieces: int, flag_step: int
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
    slow = _parse_slow(text.split(b"\n"))
    fast = _parse_fast(text)
    assert fast is not None
    assert fast.regions.tolist() == slow.regions.tolist()
    for name in ("kdamond", "time_ns", "target", "nr_regions"):
        assert np.array_equal(getattr(fast, name), getattr(slow, name)), name
