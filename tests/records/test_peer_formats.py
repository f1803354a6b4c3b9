"""damo's JSON record files, and recognising every format from its content."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import pytest

from kdamon.errors import RecordFormatError
from kdamon.model.snapshot import Snapshot, regions_array
from kdamon.records import (
    DamoJsonRecords,
    PerfScriptRecords,
    RecordReader,
    RecordWriter,
    detect_format,
    open_any,
)
from kdamon.records.types import RecordMeta

FIXTURES = Path(__file__).parent / "fixtures"


def summary(path: Path) -> list[tuple[int, tuple[int, int, int], int, int, list[tuple[int, ...]]]]:
    return [(s.time_ns, s.target, s.sample_us, s.aggr_us, s.regions.tolist()) for s in open_any(path).snapshots()]


DAMO_RECORD = [
    (1_100_000_000, (0, 0, 0), 5000, 100000, [(4194304, 8388608, 3, 2), (8388608, 12582912, 0, 7)]),
    (1_150_000_000, (0, 0, 1), 5000, 100000, [(140737488289792, 140737488355328, 5, 1)]),
    (1_200_000_000, (0, 0, 0), 5000, 100000, [(4194304, 6291456, 20, 0), (6291456, 12582912, 1, 8)]),
]


@pytest.mark.parametrize("name", ["damo_record.json", "damo_record.json_compressed"])
def test_damo_records_in_time_order(name: str) -> None:
    assert summary(FIXTURES / name) == DAMO_RECORD
    source = open_any(FIXTURES / name)
    assert source.meta.sample_us == 5000 and source.meta.aggr_us == 100000
    assert [t["target_id"] for t in source.meta.targets] == [0, 1]
    assert list(source)[1].regions[0]["nr_accesses"] == 5


def test_human_readable_values_and_percent_units() -> None:
    assert summary(FIXTURES / "damo_record_human.json") == [
        # 50 percent of 100ms / 5ms = 10 samples; age 300 ms / 100 ms = 3 aggregations
        (1_100_000_000, (1, 0, 0), 5000, 100000, [(4194304, 8388608, 10, 3), (8388608, 12582912, 2, 1024)]),
    ]


def test_old_layout_with_plain_counts_and_no_intervals() -> None:
    assert summary(FIXTURES / "damo_record_old.json") == [
        (1000, (0, 0, 42), 0, 0, [(4096, 8192, 4, 9), (8192, 16384, 0, 1)]),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"not": "a list"}', "not a list of records"),
        (b'[{"snapshots": [{"end_time": 1, "regions": [{"start": 1}]}]}]', "KeyError"),
        (b'[{"snapshots": [{"end_time": "soon", "regions": []}]}]', "quantity"),
        (b"[1, 2", "not readable as damo json"),
        (
            b'[{"snapshots": [{"end_time": 1, "regions": [{"start": 0, "end": 1, "nr_accesses": -1, "age": 0}]}]}]',
            "Overflow",
        ),
    ],
)
def test_broken_damo_files_say_what_is_wrong(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "broken.json"
    path.write_bytes(content)
    with pytest.raises(RecordFormatError, match=message):
        open_any(path)


def test_a_damo_file_converts_to_kdamon_format(tmp_path: Path) -> None:
    source = open_any(FIXTURES / "damo_record.json_compressed")
    path = tmp_path / "converted.kdr"
    with RecordWriter(path, source.meta) as writer:
        for arrays in source.snapshots():
            writer.append(arrays)
    assert summary(path) == DAMO_RECORD
    assert open_any(path).meta == source.meta


@pytest.mark.parametrize(
    ("name", "fmt", "kind"),
    [
        ("damo_record.json", "json", DamoJsonRecords),
        ("damo_record.json_compressed", "json_compressed", DamoJsonRecords),
        ("perf_script.txt", "perf_script", PerfScriptRecords),
        ("trace_pipe.txt", "perf_script", PerfScriptRecords),
        ("perf_script_mixed.txt", "perf_script", PerfScriptRecords),
    ],
)
def test_formats_are_recognised_from_content(name: str, fmt: str, kind: type) -> None:
    assert detect_format(FIXTURES / name) == fmt
    source = open_any(FIXTURES / name)
    assert isinstance(source, kind)
    assert source.format_name == fmt


def test_kdamon_files_are_recognised(tmp_path: Path) -> None:
    path = tmp_path / "any-name.bin"
    with RecordWriter(path, RecordMeta(producer="sysfs")) as writer:
        writer.append(Snapshot(1, 0, 0, 0, regions_array([0], [4096], [1], [1]), 5000, 100000))
    assert detect_format(path) == "kdamon"
    assert isinstance(open_any(path), RecordReader)


def test_compressed_json_is_told_from_text(tmp_path: Path) -> None:
    path = tmp_path / "record"
    path.write_bytes(zlib.compress(json.dumps([]).encode(), 9))
    assert detect_format(path) == "json_compressed"
    assert list(open_any(path).snapshots()) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"PERFILE2" + bytes(100), "perf script -i"),
        (b"hello world\n", "unknown record format"),
    ],
)
def test_unreadable_files_say_what_to_do(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "file"
    path.write_bytes(content)
    with pytest.raises(RecordFormatError, match=message):
        open_any(path)
