"""``kdamon report trace``: scheme applications counted per scheme and time bin."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kdamon.cli.main import main
from kdamon.errors import ConfigError
from kdamon.model import IntervalsTune, RegionState, SchemeApply
from kdamon.model.snapshot import Snapshot
from kdamon.records import RecordMeta, RecordWriter
from kdamon.records.format import applies_array
from kdamon.report.trace import ApplyBin, apply_bins

S = 1_000_000_000


def apply(time_ns: int, scheme: int, size: int) -> SchemeApply:
    return SchemeApply(time_ns, 0, scheme, 0, RegionState(0, size, 0, 5))


def test_bins_count_regions_and_bytes_per_scheme() -> None:
    rows = applies_array([apply(S, 0, 4096), apply(S + 10, 0, 8192), apply(S + 20, 1, 4096), apply(3 * S, 0, 4096)])
    bins = apply_bins([(0, rows), (1, rows[:1])], origin_ns=S, width_ns=S)
    assert bins == [
        ApplyBin(0, 0, 0, 0, 2, 12288),
        ApplyBin(0, 0, 0, 1, 1, 4096),
        ApplyBin(0, 1, 0, 0, 1, 4096),
        ApplyBin(2 * S, 0, 0, 0, 1, 4096),
    ]
    with pytest.raises(ConfigError):
        apply_bins([(0, rows)], origin_ns=0, width_ns=0)
    assert apply_bins([(0, rows[:0])], origin_ns=0, width_ns=S) == []


def test_report_trace_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "rec.kdr"
    with RecordWriter(path, RecordMeta(producer="sysfs", sample_us=5000, aggr_us=100000)) as writer:
        writer.append(Snapshot.of_rows(S, 0, 0, 0, [(0, 8192, 0, 5)], 5000, 100000))
        writer.append_applies(0, [apply(S + 5, 0, 8192), apply(S + S // 2, 0, 4096), apply(2 * S + 1, 1, 4096)])
        writer.append_tune(IntervalsTune(2 * S, 10000, 200000, 0))
    assert main(["report", "trace", str(path)]) == 0
    text = capsys.readouterr().out
    rows = [line.split() for line in text.splitlines()]
    assert ["0.0s", "0", "0", "2", "12KiB"] in rows and ["1.0s", "0", "1", "1", "4KiB"] in rows
    assert ["total", "0", "0", "2", "12KiB"] in rows
    assert "1.0s kdamond 0: sample 10ms, aggr 200ms" in text
    assert main(["report", "trace", "--json", "--interval", "2", str(path)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["origin_ns"] == S and document["bin_ns"] == 2 * S
    assert [(a["scheme_idx"], a["regions"], a["bytes"]) for a in document["applications"]] == [
        (0, 2, 12288),
        (1, 1, 4096),
    ]
    assert document["tunes"] == [{"time_ns": 2 * S, "sample_us": 10000, "aggr_us": 200000, "kdamond_idx": 0}]


def test_report_trace_refuses_records_without_applications(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    damo = tmp_path / "damo.json"
    damo.write_text(
        json.dumps(
            [
                {
                    "kdamond_idx": 0,
                    "context_idx": 0,
                    "intervals": {"sample_us": 5000, "aggr_us": 100000, "ops_update_us": 1000000},
                    "scheme_idx": None,
                    "target_id": 0,
                    "scheme_filters": [],
                    "snapshots": [],
                }
            ]
        )
    )
    assert main(["report", "trace", str(damo)]) == 2
    assert "keeps no scheme applications" in capsys.readouterr().err
    assert np.dtype  # numpy stays importable for the record file's arrays
