"""kdamon's record file: round trips, truncated and damaged files, appending."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kdamon.errors import RecordFormatError
from kdamon.model import RegionState
from kdamon.model.snapshot import REGION_DTYPE, Snapshot, regions_array
from kdamon.records import RecordMeta, RecordWriter, read_records
from kdamon.records.format import FORMAT_VERSION, MAGIC, encode_header, encode_target

META = RecordMeta(
    producer="engine", sample_us=5000, aggr_us=100000, ops="vaddr", targets=({"pid": 42, "cmd": "sleep 1"},)
)


def snapshot(index: int, nr_regions: int = 3, target_idx: int = 0) -> Snapshot:
    regions = tuple(
        RegionState(start=4096 * (10 * r), end=4096 * (10 * r + 10), nr_accesses=(r + index) % 21, age=index + r)
        for r in range(nr_regions)
    )
    return Snapshot.of_rows(1_000_000_000 + index * 100_000_000, 0, 0, target_idx, regions, 5000, 100000)


def write(path: Path, snapshots: list[Snapshot], meta: RecordMeta = META) -> None:
    with RecordWriter(path, meta) as writer:
        for one in snapshots:
            writer.append(one)


regions_strategy = st.lists(
    st.tuples(
        st.integers(0, 2**63),
        st.integers(1, 2**40),
        st.integers(0, 2**32 - 1),
        st.integers(0, 2**32 - 1),
    ),
    max_size=20,
).map(lambda rows: tuple(RegionState(s, s + size, n, a) for s, size, n, a in rows))

snapshot_strategy = st.builds(
    Snapshot.of_rows,
    time_ns=st.integers(0, 2**63 - 1),
    kdamond_idx=st.integers(0, 2**32 - 1),
    context_idx=st.integers(0, 2**32 - 1),
    target_idx=st.integers(0, 2**64 - 1),
    rows=regions_strategy,
    sample_us=st.integers(0, 2**64 - 1),
    aggr_us=st.integers(0, 2**64 - 1),
)


@settings(max_examples=40, deadline=None)
@given(snapshots=st.lists(snapshot_strategy, max_size=5))
def test_round_trip_gives_back_the_snapshots(
    tmp_path_factory: pytest.TempPathFactory, snapshots: list[Snapshot]
) -> None:
    path = tmp_path_factory.mktemp("rt") / "rec.kdr"
    write(path, snapshots)
    reader = read_records(path)
    assert list(reader) == snapshots
    assert reader.truncated is False


def test_metadata_and_columnar_arrays(tmp_path: Path) -> None:
    path = tmp_path / "rec.kdr"
    write(path, [snapshot(0), snapshot(1, nr_regions=5, target_idx=2)])
    reader = read_records(path)
    assert reader.meta == META
    assert reader.version == FORMAT_VERSION
    arrays = list(reader.snapshots())
    assert [a.target for a in arrays] == [(0, 0, 0), (0, 0, 2)]
    assert arrays[1].regions.dtype == REGION_DTYPE
    assert arrays[1].regions["nr_accesses"].tolist() == [1, 2, 3, 4, 5]
    assert arrays[1].max_nr_accesses == 20


def test_the_file_is_compact(tmp_path: Path) -> None:
    path = tmp_path / "rec.kdr"
    write(path, [snapshot(i, nr_regions=100) for i in range(10)])
    assert path.stat().st_size == len(encode_header(META)) + 10 * (12 + 48 + 100 * 24)


def test_every_truncation_is_read_without_error(tmp_path: Path) -> None:
    path = tmp_path / "rec.kdr"
    snapshots = [snapshot(i) for i in range(3)]
    write(path, snapshots)
    data = path.read_bytes()
    chunk = 12 + 48 + 3 * 24
    data_start = len(data) - 3 * chunk
    cut_path = tmp_path / "cut.kdr"
    for cut in range(data_start, len(data)):
        cut_path.write_bytes(data[:cut])
        reader = read_records(cut_path)
        complete = (cut - data_start) // chunk
        assert list(reader) == snapshots[:complete], cut
        assert reader.truncated is ((cut - data_start) % chunk != 0), cut


def test_zero_filled_tail_counts_as_truncated(tmp_path: Path) -> None:
    path = tmp_path / "rec.kdr"
    write(path, [snapshot(0), snapshot(1)])
    with open(path, "ab") as stream:
        stream.write(bytes(4096))
    reader = read_records(path)
    assert list(reader) == [snapshot(0), snapshot(1)]
    assert reader.truncated


def _flip_byte_in_chunk(path: Path, chunk_index: int, chunk_size: int) -> None:
    data = bytearray(path.read_bytes())
    start = len(data) - 3 * chunk_size + chunk_index * chunk_size
    data[start + 40] ^= 0xFF  # inside the snapshot header
    path.write_bytes(bytes(data))


def test_a_damaged_chunk_in_the_middle_raises_or_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "rec.kdr"
    snapshots = [snapshot(i) for i in range(3)]
    write(path, snapshots)
    _flip_byte_in_chunk(path, 1, 12 + 48 + 3 * 24)
    with pytest.raises(RecordFormatError, match="checksum.*skip_corrupt=True"):
        list(read_records(path))
    reader = read_records(path, skip_corrupt=True)
    assert list(reader) == [snapshots[0], snapshots[2]]
    assert reader.corrupted == 1
    assert reader.truncated is False


def test_a_damaged_final_chunk_is_a_torn_write(tmp_path: Path) -> None:
    path = tmp_path / "rec.kdr"
    snapshots = [snapshot(i) for i in range(3)]
    write(path, snapshots)
    _flip_byte_in_chunk(path, 2, 12 + 48 + 3 * 24)
    reader = read_records(path)
    assert list(reader) == snapshots[:2]
    assert reader.truncated


def test_unknown_chunk_kinds_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "rec.kdr"
    write(path, [snapshot(0)])
    payload = b"future data"
    kind_length = struct.pack("<II", 77, len(payload))
    crc = zlib.crc32(payload, zlib.crc32(kind_length))
    with open(path, "ab") as stream:
        stream.write(kind_length + struct.pack("<I", crc) + payload)
    with RecordWriter(path, append=True) as writer:
        writer.append(snapshot(1))
    assert list(read_records(path)) == [snapshot(0), snapshot(1)]


def test_append_continues_after_a_killed_recorder(tmp_path: Path) -> None:
    path = tmp_path / "rec.kdr"
    write(path, [snapshot(0), snapshot(1)])
    path.write_bytes(path.read_bytes()[:-7])  # the recorder died writing snapshot 1
    with RecordWriter(path, RecordMeta(producer="ignored"), append=True) as writer:
        assert writer.meta == META
        writer.append(snapshot(2))
    reader = read_records(path)
    assert list(reader) == [snapshot(0), snapshot(2)]
    assert reader.truncated is False


def test_flushed_snapshots_are_readable_while_recording(tmp_path: Path) -> None:
    path = tmp_path / "rec.kdr"
    with RecordWriter(path, META, flush_every=1) as writer:
        writer.append(snapshot(0))
        assert list(read_records(path)) == [snapshot(0)]
        writer.append(snapshot(1))
        assert len(list(read_records(path))) == 2
    assert writer.closed


def test_flush_every_zero_buffers_until_close(tmp_path: Path) -> None:
    path = tmp_path / "rec.kdr"
    with RecordWriter(path, META, flush_every=0) as writer:
        writer.append(snapshot(0))
        assert not path.exists()
    assert list(read_records(path)) == [snapshot(0)]


def test_an_existing_file_is_replaced_only_once_a_snapshot_is_in(tmp_path: Path) -> None:
    path = tmp_path / "rec.kdr"
    path.write_bytes(b"the user's earlier recording")
    with RecordWriter(path, META) as writer:
        assert path.read_bytes() == b"the user's earlier recording"
        writer.append(snapshot(0))
        assert list(read_records(path)) == [snapshot(0)]
        writer.append(snapshot(1))
    assert list(read_records(path)) == [snapshot(0), snapshot(1)]
    assert os.listdir(tmp_path) == ["rec.kdr"]


def test_a_failure_before_the_first_snapshot_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "rec.kdr"
    path.write_bytes(b"the user's earlier recording")
    with pytest.raises(RecordFormatError), RecordWriter(path, META):
        raise RecordFormatError("the recorder failed")
    writer = RecordWriter(path, META)
    writer.discard()
    assert path.read_bytes() == b"the user's earlier recording"
    assert os.listdir(tmp_path) == ["rec.kdr"]
    with RecordWriter(tmp_path / "empty.kdr", META):
        pass  # closed without a snapshot: a valid, empty record
    assert list(read_records(tmp_path / "empty.kdr")) == []


def test_appending_to_a_closed_writer_says_what_to_do(tmp_path: Path) -> None:
    writer = RecordWriter(tmp_path / "rec.kdr", META)
    writer.close()
    with pytest.raises(RecordFormatError, match="append=True"):
        writer.append(snapshot(0))


def test_out_of_range_fields_are_reported(tmp_path: Path) -> None:
    bad = Snapshot(0, 2**40, 0, 0, regions_array([0], [4096], [0], [0]), 1, 1)
    with RecordWriter(tmp_path / "rec.kdr", META) as writer, pytest.raises(RecordFormatError, match="out of range"):
        writer.append(bad)


def test_a_cut_header_is_reported_as_incomplete(tmp_path: Path) -> None:
    path = tmp_path / "rec.kdr"
    write(path, [])
    header = path.read_bytes()
    for cut in (3, 12, len(header) - 1):
        path.write_bytes(header[:cut])
        with pytest.raises(RecordFormatError, match="header is incomplete"):
            read_records(path)


def test_other_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.kdr"
    path.write_bytes(b"[]")
    with pytest.raises(RecordFormatError, match="not a kdamon record file"):
        read_records(path)
    newer = struct.pack("<8sHHII", MAGIC, FORMAT_VERSION + 1, 0, 2, zlib.crc32(b"{}")) + b"{}"
    path.write_bytes(newer)
    with pytest.raises(RecordFormatError, match="upgrade kdamon"):
        read_records(path)


def test_snapshot_rows_and_objects_agree_with_the_columns() -> None:
    original = snapshot(4, nr_regions=4)
    assert original.regions["start"].tolist() == [row[0] for row in original.rows()]
    assert Snapshot.of_rows(original.time_ns, 0, 0, 0, list(original.states()), 5000, 100000) == original
    assert original.total_size == sum(r.size for r in original.states())
    empty = Snapshot(0, 0, 0, 0, np.empty(0, dtype=REGION_DTYPE), 0, 0)
    assert list(empty.states()) == [] and empty.rows() == []
    assert empty.max_nr_accesses == 0
    assert empty != original


def test_scheme_applications_and_tunes_round_trip_and_do_not_disturb_snapshot_readers(tmp_path: Path) -> None:
    from kdamon.model import IntervalsTune, SchemeApply

    path = tmp_path / "rec.kdr"
    applies = [SchemeApply(1_000 + i, 0, i % 2, 0, RegionState(4096 * i, 4096 * (i + 1), i, 2 * i)) for i in range(5)]
    with RecordWriter(path, META) as writer:
        writer.append(snapshot(0))
        writer.append_applies(3, applies)
        writer.append_applies(3, [])  # nothing to write
        writer.append_tune(IntervalsTune(2_000, 2500, 50_000, 3))
        writer.append(snapshot(1))
    reader = read_records(path)
    assert [s.time_ns for s in reader.snapshots()] == [snapshot(0).time_ns, snapshot(1).time_ns]
    [(kdamond_idx, rows)] = list(reader.applies())
    assert kdamond_idx == 3 and rows["time_ns"].tolist() == [1_000, 1_001, 1_002, 1_003, 1_004]
    assert rows["scheme_idx"].tolist() == [0, 1, 0, 1, 0] and rows["end"].tolist()[-1] == 4096 * 5
    assert list(reader.tunes()) == [IntervalsTune(2_000, 2500, 50_000, 3)]
    assert writer.nr_applies == 5 and writer.nr_snapshots == 2


def test_targets_appended_while_recording_join_the_metadata(tmp_path: Path) -> None:
    path = tmp_path / "children.kdr"
    with RecordWriter(path, META, targets_appended=True) as writer:
        writer.append(snapshot(0))
        assert writer.append_target({"pid": 43, "parent": 42}) == 1
        writer.append(snapshot(1, target_idx=1))
    with RecordWriter(path, append=True) as writer:  # a recorder going on with the same file
        assert writer.meta.targets == META.targets + ({"parent": 42, "pid": 43},)
        assert writer.append_target({"pid": 44, "parent": 43}) == 2
    reader = read_records(path)
    assert reader.meta.targets == META.targets + ({"parent": 42, "pid": 43}, {"parent": 43, "pid": 44})
    assert [s.target_idx for s in reader.snapshots()] == [0, 1] and not reader.truncated

    fixed = tmp_path / "fixed.kdr"
    with RecordWriter(fixed, META) as writer, pytest.raises(RecordFormatError, match="targets_appended=True"):
        writer.append_target({"pid": 43})
    assert read_records(fixed).meta == META


def test_a_target_chunk_out_of_order_is_damage(tmp_path: Path) -> None:
    path = tmp_path / "children.kdr"
    with RecordWriter(path, META, targets_appended=True) as writer:
        writer.append(snapshot(0))
    head, body = encode_target(5, {"pid": 43})  # as if the chunks of targets 1 to 4 had been lost
    with path.open("ab") as stream:
        stream.write(head + bytes(body))
    with pytest.raises(RecordFormatError, match="adds target 5 after 1 targets"):
        read_records(path).meta  # noqa: B018  (reading the metadata is the test)
