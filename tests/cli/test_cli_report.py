"""kdamon report on kdamon's record files and the peer's (damo's json, json_compressed,
perf script text), made here from their documented layouts."""

from __future__ import annotations

import json
import sys
import zlib
from pathlib import Path

import pytest

from cli_helpers import Kdamon, Terminal
from kdamon.backend.host import Host, HostPaths
from kdamon.cli.main import main
from kdamon.model import RegionState, Snapshot
from kdamon.records.types import RecordMeta
from kdamon.records.writer import RecordWriter

HOT, COLD = (0x10000000, 0x10400000), (0x10400000, 0x14400000)


def _snapshots(n: int = 6) -> list[Snapshot]:
    return [
        Snapshot.of_rows(i * 100_000_000, 0, 0, 0, (RegionState(*HOT, 20, i), RegionState(*COLD, 0, i)), 5000, 100000)
        for i in range(n)
    ]


@pytest.fixture
def kdr(tmp_path: Path) -> Path:
    path = tmp_path / "rec.kdr"
    with RecordWriter(path, RecordMeta(producer="engine", sample_us=5000, aggr_us=100000, ops="vaddr")) as writer:
        for snapshot in _snapshots():
            writer.append(snapshot)
    return path


def _damo_json() -> list[dict[str, object]]:
    return [
        {
            "kdamond_idx": 0,
            "context_idx": 0,
            "intervals": {"sample_us": "5 ms", "aggr_us": "100 ms", "ops_update_us": "1 s"},
            "scheme_idx": None,
            "target_id": 0,
            "scheme_filters": [],
            "snapshots": [
                {
                    "start_time": s.time_ns - 100_000_000,
                    "end_time": s.time_ns,
                    "total_bytes": 0,
                    "regions": [
                        {
                            "start": r.start,
                            "end": r.end,
                            "nr_accesses": {"samples": r.nr_accesses, "percent": None},
                            "age": {"usec": None, "aggr_intervals": r.age},
                            "sz_filter_passed": 0,
                        }
                        for r in s.states()
                    ],
                }
                for s in _snapshots()
            ],
        }
    ]


def _perf_script() -> str:
    lines = []
    for s in _snapshots():
        secs = s.time_ns / 1e9 + 100
        for r in s.states():
            lines.append(
                f"        kdamond.0   812 [001] {secs:.6f}: damon:damon_aggregated: target_id=0 "
                f"nr_regions=2 {r.start}-{r.end}: {r.nr_accesses} {r.age}"
            )
    return "\n".join(lines) + "\n"


def test_heatmap_wss_raw(kdr: Path, kdamon: Kdamon, tmp_path: Path) -> None:
    host = Host(HostPaths.under(tmp_path))
    code, out, _ = kdamon(host, "report", "heatmap", "--width", "20", "--height", "6", "--color", "never", str(kdr))
    assert code == 0
    rows = [line for line in out.splitlines() if line.count("|") == 2]
    assert len(rows) == 6 and all("@" in row and " " in row.split("|")[1] for row in rows)

    code, out, _ = kdamon(
        host,
        "report",
        "heatmap",
        "--address-range",
        f"{HOT[0]:#x}-{HOT[1]:#x}",
        "--width",
        "10",
        "--height",
        "3",
        "--color",
        "never",
        str(kdr),
    )
    assert code == 0
    assert [line.split("|")[1] for line in out.splitlines() if line.count("|") == 2] == ["@" * 10] * 3

    code, out, _ = kdamon(host, "report", "wss", str(kdr))
    assert code == 0 and "4MiB" in out

    code, out, _ = kdamon(host, "report", "raw", "--json", str(kdr))
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 6
    assert set(lines[0]) == {"time_ns", "target", "regions"}
    assert lines[1]["regions"][0] == {"start": HOT[0], "end": HOT[1], "nr_accesses": 20, "age": 1}


def test_png(kdr: Path, kdamon: Kdamon, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    png = tmp_path / "heat.png"
    code, _, err = kdamon(Host(HostPaths.under(tmp_path)), "report", "heatmap", "--png", str(png), str(kdr))
    assert code == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("fmt", ["json", "json_compressed", "perf_script"])
def test_peer_records(fmt: str, kdamon: Kdamon, tmp_path: Path) -> None:
    path = tmp_path / "damon.data"
    if fmt == "perf_script":
        path.write_text(_perf_script())
        extra = ["--sample", "5ms", "--aggr", "100ms"]
    else:
        text = json.dumps(_damo_json()).encode()
        path.write_bytes(zlib.compress(text) if fmt == "json_compressed" else text)
        extra = []
    code, out, err = kdamon(Host(HostPaths.under(tmp_path)), "report", "raw", "--json", *extra, str(path))
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    expected = [
        [{"start": r.start, "end": r.end, "nr_accesses": r.nr_accesses, "age": r.age} for r in s.states()]
        for s in _snapshots()
    ]
    assert [line["regions"] for line in lines] == expected


def test_bad_input(kdr: Path, kdamon: Kdamon, tmp_path: Path) -> None:
    host = Host(HostPaths.under(tmp_path))
    code, _, err = kdamon(host, "report", "heatmap", "--address-range", "0x1-0x2", str(kdr))
    assert code == 2 and "no recorded region overlaps" in err
    code, _, err = kdamon(host, "report", "raw", "--target", "0/0", str(kdr))
    assert code == 2 and "KDAMOND/CONTEXT/TARGET" in err
    (tmp_path / "junk").write_text("hello\n")
    code, _, err = kdamon(host, "report", "wss", str(tmp_path / "junk"))
    assert code == 1 and "unknown record format" in err


def test_heatmap_and_wss_json(kdr: Path, kdamon: Kdamon, tmp_path: Path) -> None:
    host = Host(HostPaths.under(tmp_path))
    code, out, err = kdamon(host, "report", "heatmap", "--json", "--width", "17", "--height", "3", str(kdr))
    assert code == 0, err
    grid = json.loads(out)
    assert grid["target"] == [0, 0, 0] and grid["nr_snapshots"] == 6 and grid["max_nr_accesses"] == 20
    assert grid["areas"] == [{"start": HOT[0], "end": COLD[1]}]  # one area: the hot 4 MiB, then the cold 64 MiB
    assert grid["address_edges"][0] == HOT[0] and grid["address_edges"][-1] == COLD[1]
    assert grid["address_edges"][1] == HOT[1]  # 17 bins of 4 MiB
    assert grid["values"] == [[1.0] + [0.0] * 16] * 3
    assert len(grid["time_edges_ns"]) == 4 and grid["time_edges_ns"][0] == 0

    code, out, err = kdamon(host, "report", "wss", "--json", "--percentiles", "50,100", str(kdr))
    assert code == 0, err
    [wss] = json.loads(out)
    size = HOT[1] - HOT[0]
    assert wss["target"] == [0, 0, 0] and wss["threshold"] == 0 and wss["mean_bytes"] == size
    assert wss["percentiles"] == [{"percentile": 50.0, "bytes": size}, {"percentile": 100.0, "bytes": size}]
    assert wss["snapshots"] == [{"time_ns": s.time_ns, "bytes": size} for s in _snapshots()]
    code, out, _ = kdamon(host, "report", "wss", "--json", "--threshold", "20", str(kdr))
    assert json.loads(out)[0]["mean_bytes"] == 0  # nothing is accessed more than 20 times


@pytest.mark.parametrize(
    ("env", "argv", "coloured"),
    [
        ({}, [], True),
        ({"NO_COLOR": "1"}, [], False),
        ({"TERM": "dumb"}, [], False),
        ({"NO_COLOR": "1"}, ["--color", "always"], True),
        ({}, ["--color", "never"], False),
    ],
)
def test_heatmap_colour_on_a_terminal(
    env: dict[str, str], argv: list[str], coloured: bool, kdr: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    assert main(["report", "heatmap", "--width", "20", "--height", "3", *argv, str(kdr)]) == 0
    assert ("\x1b[48;5;" in terminal.getvalue()) is coloured
    assert "time s" in terminal.getvalue()
