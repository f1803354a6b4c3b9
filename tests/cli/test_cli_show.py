"""``kdamon show``, ``top`` and ``report access`` on the host: engine kdamonds, temporary ones, errors."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli_helpers import Kdamon
from kdamon.backend.host import Host, HostPaths
from kdamon.testing.workloads import Layout

WORKLOAD = [sys.executable, "-m", "kdamon.testing.workloads", "hot_cold", "--sizes", "1MiB", "8MiB", "--uffd"]
FAST = ["--sample", "2ms", "--aggr", "20ms"]


@pytest.fixture
def workload(tmp_path: Path) -> Iterator[Layout]:
    layout = tmp_path / "layout.json"
    proc = subprocess.Popen([*WORKLOAD, "--seconds", "120", "--layout", str(layout)])
    deadline = time.monotonic() + 30
    while not layout.exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    yield Layout.from_json(layout.read_text())
    proc.kill()
    proc.wait()


def hot_and_cold(view: dict[str, object], layout: Layout) -> tuple[float, float]:
    def mean(low: int, high: int) -> float:
        total = weight = 0
        for region in view["regions"]:  # type: ignore[attr-defined]
            overlap = min(region["end"], high) - max(region["start"], low)
            if overlap > 0:
                total, weight = total + overlap * region["nr_accesses"], weight + overlap
        assert weight
        return total / weight

    return mean(*layout.hot), mean(*layout.cold)


def test_show_and_top_of_an_engine_kdamond(tmp_path: Path, kdamon: Kdamon, workload: Layout) -> None:
    host = Host(HostPaths.under(tmp_path))
    code, out, err = kdamon(host, "start", "--backend", "engine", "--target-pid", str(workload.pid), *FAST)
    assert (code, out.strip()) == (0, "engine:0"), err
    try:
        time.sleep(1.5)
        span = f"{workload.hot[0]:#x}-{workload.cold[1]:#x}"
        code, out, err = kdamon(host, "show", "--json", "--address-range", span)  # the only kdamond
        assert code == 0, err
        [line] = out.splitlines()
        view = json.loads(line)
        assert view["kdamond"] == "engine:0"
        # the intervals the engine really used: 20ms, or wider with the same 10 samples
        assert view["aggr_us"] >= 20000 and view["aggr_us"] // view["sample_us"] == 10
        hot, cold = hot_and_cold(view, workload)
        assert hot > 3 * cold and hot >= 2, (hot, cold)
        # most of the 1 MiB hot area (a region at its edge reaching into the cold area may be cold)
        assert view["summary"]["hot_bytes"] + view["summary"]["warm_bytes"] >= 3 << 18

        code, out, err = kdamon(host, "show", "engine:0", "--watch", "--count", "3", "--access", "1-max")
        assert code == 0, err
        assert out.count("engine:0 (vaddr) pid") == 3 and "after filters" in out

        code, out, err = kdamon(host, "top", "engine:0", "--count", "2", "--address-range", span)
        assert code == 0, err
        lines = out.splitlines()
        assert len(lines) == 2 and all("hot" in line and "cold" in line for line in lines)
    finally:
        kdamon(host, "stop")


def test_show_with_a_pid_and_no_kdamond_runs_a_temporary_one(tmp_path: Path, kdamon: Kdamon, workload: Layout) -> None:
    host = Host(HostPaths.under(tmp_path))
    code, out, err = kdamon(host, "show", "--json", "--pid", str(workload.pid), "--backend", "engine", "--warmup", "8")
    assert code == 0, err
    assert "temporary kdamond on kdamon's engine" in err
    hot, cold = hot_and_cold(json.loads(out), workload)
    assert hot > 3 * cold, (hot, cold)
    assert not (host.engine_dir).exists() or list(host.engine_dir.iterdir()) == [], "no engine daemon is left"


def test_show_needs_one_kdamond(tmp_path: Path, kdamon: Kdamon, workload: Layout) -> None:
    host = Host(HostPaths.under(tmp_path))
    code, _, err = kdamon(host, "show")
    assert code != 0 and "no kdamond runs here" in err
    code, _, err = kdamon(host, "show", "sysfs:3")
    assert code != 0 and "sysfs:3 is not a running kdamond" in err
    for _ in range(2):
        assert kdamon(host, "start", "--backend", "engine", "--target-pid", str(workload.pid))[0] == 0
    try:
        code, _, err = kdamon(host, "show")
        assert code != 0 and "2 kdamonds run (engine:0, engine:1): name one" in err
        code, _, err = kdamon(host, "show", "engine:1", "--pid", "1")
        assert code != 0 and "not both" in err
        code, _, err = kdamon(host, "show", "engine:1", "--access", "5")
        assert code != 0 and "--access" in err
    finally:
        kdamon(host, "stop")


def test_report_access_on_kdamon_and_damo_records(tmp_path: Path, kdamon: Kdamon) -> None:
    from kdamon.records import RecordMeta, RecordWriter
    from test_cli_report import _damo_json, _snapshots

    host = Host(HostPaths.under(tmp_path))
    kdr = tmp_path / "rec.kdr"
    with RecordWriter(kdr, RecordMeta(producer="engine", sample_us=5000, aggr_us=100000)) as writer:
        for snapshot in _snapshots():
            writer.append(snapshot)
    damo = tmp_path / "damo.json"
    damo.write_text(json.dumps(_damo_json()))
    for path in (kdr, damo):
        code, out, err = kdamon(host, "report", "access", "--json", str(path))
        assert code == 0, err
        [view] = [json.loads(line) for line in out.splitlines()]
        assert view["time_ns"] == _snapshots()[-1].time_ns and view["sample_us"] == 5000
        assert view["summary"]["hot_bytes"] > 0 and view["summary"]["cold_bytes"] == 0
        code, out, err = kdamon(host, "report", "access", "--at", "0.25", str(path))
        assert code == 0, err
        assert "at 0.200 s" in out and "temperature" in out
    code, _, err = kdamon(host, "report", "access", "--target", "0/0/9", str(kdr))
    assert code != 0 and "holds no snapshot of target 0/0/9" in err
