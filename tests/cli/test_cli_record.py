"""kdamon record on the engine: a readable file, no progress line in a pipe, and a
readable file after the recorder is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from cli_helpers import Kdamon
from kdamon.backend.host import ENV_VARS, Host, HostPaths
from kdamon.errors import RecordFormatError
from kdamon.events import forks
from kdamon.events.connector import ConnectorThread
from kdamon.model.snapshot import Snapshot
from kdamon.records.detect import open_any
from kdamon.records.reader import RecordReader
from kdamon.testing.workloads import Layout, child_layout_path

WORKLOAD = [sys.executable, "-m", "kdamon.testing.workloads", "hot_cold", "--sizes", "1MiB", "4MiB", "--uffd"]
FAST = ["--sample", "2ms", "--aggr", "20ms"]


def test_record_command_on_engine(tmp_path: Path, kdamon: Kdamon) -> None:
    out = tmp_path / "rec.kdr"
    code, stdout, err = kdamon(
        Host(HostPaths.under(tmp_path)),
        "record",
        "-o",
        str(out),
        "--duration",
        "2",
        *FAST,
        "--",
        *WORKLOAD,
        "--seconds",
        "30",
    )
    assert code == 0, err
    assert "\r" not in err and "kdamon's engine" in err and "(after 2 s)" in err
    source = open_any(out)
    assert (source.meta.producer, source.meta.ops, source.meta.aggr_us) == ("engine", "vaddr", 20000)
    snapshots = list(source.snapshots())
    assert len(snapshots) >= 2 and not source.truncated
    assert all(len(s.regions) > 0 for s in snapshots)


def test_record_stops_when_the_target_exits(tmp_path: Path, kdamon: Kdamon) -> None:
    out = tmp_path / "rec.kdr"
    code, _, err = kdamon(
        Host(HostPaths.under(tmp_path)),
        "record",
        "-o",
        str(out),
        "--duration",
        "600",
        *FAST,
        "--",
        *WORKLOAD,
        "--seconds",
        "1",
    )
    assert code == 0, err
    assert "exited)" in err
    assert RecordReader(out).meta.producer == "engine"


def test_record_needs_one_target(tmp_path: Path, kdamon: Kdamon) -> None:
    host = Host(HostPaths.under(tmp_path))
    assert kdamon(host, "record", "--duration", "1")[0] == 2
    code, _, err = kdamon(host, "record", "--paddr", "--pid", "1")
    assert code == 2 and "give what to record" in err and "--pid and --paddr" in err
    code, _, err = kdamon(host, "record", "--kdamond", "engine:0", "--aggr", "1s")
    assert code == 2 and "--aggr cannot be given with --kdamond" in err


def test_a_failed_record_leaves_the_users_file_byte_identical(
    tmp_path: Path, kdamon: Kdamon, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = Host(HostPaths.under(tmp_path / "host"))
    work = tmp_path / "work"
    work.mkdir()
    keep = work / "keep.kdr"
    keep.write_bytes(os.urandom(33551))
    before = keep.read_bytes()
    code, _, err = kdamon(host, "record", "--backend", "engine", "-o", str(keep), "--pid", "999999")
    assert code == 1 and "999999" in err
    assert keep.read_bytes() == before
    monkeypatch.chdir(work)
    code, _, err = kdamon(host, "record", "--backend", "engine", "--pid", "999999")
    assert code == 1
    assert os.listdir(work) == ["keep.kdr"]  # no empty kdamon.kdr, no temporary file


def test_a_recording_without_a_snapshot_keeps_the_old_file(tmp_path: Path, kdamon: Kdamon) -> None:
    keep = tmp_path / "keep.kdr"
    keep.write_bytes(b"an earlier recording")
    code, _, err = kdamon(
        Host(HostPaths.under(tmp_path)),
        "record",
        "-o",
        str(keep),
        "--aggr",
        "10s",
        "--backend",
        "engine",
        "--",
        sys.executable,
        "-c",
        "pass",
    )
    assert code == 1 and "no snapshot was recorded" in err and "left as it was" in err
    assert keep.read_bytes() == b"an earlier recording"


def test_killed_recorder_leaves_a_readable_file(tmp_path: Path) -> None:
    paths = HostPaths.under(tmp_path)
    env = dict(os.environ)
    for field, var in ENV_VARS.items():
        env[var] = str(getattr(paths, field))
    out = tmp_path / "rec.kdr"
    recorder = subprocess.Popen(
        [sys.executable, "-m", "kdamon", "record", "-o", str(out), *FAST, "--", *WORKLOAD, "--seconds", "60"],
        env=env,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if sum(1 for _ in RecordReader(out).snapshots()) >= 3:
                    break
            except (OSError, RecordFormatError):  # not created, or its header not written yet
                pass
            time.sleep(0.1)
    finally:
        os.killpg(recorder.pid, signal.SIGKILL)
        recorder.wait()
    reader = RecordReader(out)
    assert sum(1 for _ in reader.snapshots()) >= 3


def test_record_several_pids_and_attach_to_a_running_kdamond(tmp_path: Path, kdamon: Kdamon) -> None:
    host = Host(HostPaths.under(tmp_path))
    workloads = [subprocess.Popen([*WORKLOAD, "--seconds", "60"]) for _ in range(2)]
    try:
        out = tmp_path / "two.kdr"
        code, _, err = kdamon(
            host,
            "record",
            "-o",
            str(out),
            "--duration",
            "1.5",
            *FAST,
            "--backend",
            "engine",
            *(arg for w in workloads for arg in ("--pid", str(w.pid))),
        )
        assert code == 0, err
        reader = RecordReader(out)
        assert [t["pid"] for t in reader.meta.targets] == [w.pid for w in workloads]
        assert {s.target_idx for s in reader.snapshots()} == {0, 1}

        code, stdout, err = kdamon(host, "start", "--backend", "engine", "--target-pid", str(workloads[0].pid), *FAST)
        assert code == 0, err
        attached = tmp_path / "attached.kdr"
        code, _, err = kdamon(host, "record", "-o", str(attached), "--duration", "1", "--kdamond", stdout.strip())
        assert code == 0, err
        assert "read-only" in err
        reader = RecordReader(attached)
        assert reader.meta.targets == ({"kdamond": "engine:0", "target": f"pid {workloads[0].pid}"},)
        assert reader.meta.aggr_us == 20000 and sum(1 for _ in reader.snapshots()) >= 5
    finally:
        kdamon(host, "stop")
        for w in workloads:
            w.kill()
            w.wait()


def connector_available() -> bool:
    thread = ConnectorThread(lambda _msg: None, lambda: None)
    try:
        thread.start()
    except OSError:
        return False
    finally:
        thread.stop()
    return True


def hot_seen(snapshot: Snapshot, layout: Layout) -> bool:
    """Whether ``snapshot`` shows the workload's hot area hot and its cold area cold."""

    def mean(lo: int, hi: int) -> float:
        covered = [(min(r.end, hi) - max(r.start, lo), r.nr_accesses) for r in snapshot.states()]
        return sum(size * n for size, n in covered if size > 0) / (hi - lo)

    hot, cold = mean(*layout.hot), mean(*layout.cold)
    return hot >= 0.5 * snapshot.max_nr_accesses and cold <= 0.2 * hot


@pytest.mark.parametrize("source", ["connector", "scan"])
def test_record_follows_the_children_of_a_process(
    tmp_path: Path, kdamon: Kdamon, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    if source == "connector" and not connector_available():
        pytest.skip("the process connector is unavailable here (root, CONFIG_PROC_EVENTS)")
    if source == "scan":

        def refuse(self: object) -> None:
            raise OSError("refused by the test")

        monkeypatch.setattr(forks.ConnectorThread, "start", refuse)
    layout_file = tmp_path / "layout.json"
    parent = subprocess.Popen(
        [*WORKLOAD, "--seconds", "300", "--children", "2", "--fork-on-sigusr1", "--layout", str(layout_file)]
    )
    out = tmp_path / "children.kdr"
    children: list[Layout] = []

    def drive() -> None:
        """Fork the children once the recording runs; end the recording (the processes exit) once the
        children's hot areas were seen hot."""
        deadline = time.monotonic() + 120  # a safety net against hangs, never a measured bound

        def seen(target: int, layout: Layout | None = None) -> bool:
            snapshots = [s for s in open_any(out).snapshots() if s.target_idx == target] if out.exists() else []
            return bool(snapshots) and (layout is None or hot_seen(snapshots[-1], layout))

        try:
            while not seen(0) and time.monotonic() < deadline:
                time.sleep(0.05)
            parent.send_signal(signal.SIGUSR1)
            for i in range(2):
                path = child_layout_path(layout_file, i)
                while not path.exists() and time.monotonic() < deadline:
                    time.sleep(0.05)
                children.append(Layout.from_json(path.read_text()))
            for index, child in enumerate(children, start=1):
                while not seen(index, child) and time.monotonic() < deadline:
                    time.sleep(0.05)
        finally:
            for child in children:
                os.kill(child.pid, signal.SIGKILL)
            parent.kill()

    while not layout_file.exists():
        time.sleep(0.05)
    driver = threading.Thread(target=drive)
    driver.start()
    try:
        code, _, err = kdamon(
            Host(HostPaths.under(tmp_path)),
            "record",
            "-o",
            str(out),
            "--duration",
            "300",
            *FAST,
            "--backend",
            "engine",
            "--pid",
            str(parent.pid),
            "--include-children",
        )
    finally:
        driver.join()
        parent.wait()
    assert code == 0, err
    assert (
        "process connector's fork events"
        if source == "connector"
        else "scanning /proc every 1 s (a child that exits sooner may be missed), as the process connector is not "
        "available: refused by the test"
    ) in err
    assert "(every followed process exited)" in err
    reader = open_any(out)
    assert reader.meta.targets[0]["pid"] == parent.pid
    assert [(t["pid"], t["parent"]) for t in reader.meta.targets[1:]] == [(c.pid, parent.pid) for c in children]
    by_target: dict[int, list[Snapshot]] = {}
    for snapshot in reader.snapshots():
        by_target.setdefault(snapshot.target_idx, []).append(snapshot)
    assert sorted(by_target) == [0, 1, 2]
    for index, child in enumerate(children, start=1):
        assert any(hot_seen(s, child) for s in by_target[index]), f"child target {index} never seen hot"


def test_include_children_needs_processes_to_follow(tmp_path: Path, kdamon: Kdamon) -> None:
    host = Host(HostPaths.under(tmp_path))
    for source in (["--paddr"], ["--kdamond", "engine:0"]):
        code, _, err = kdamon(host, "record", *source, "--include-children")
        assert code == 2 and "--include-children follows the processes that --pid or -- CMD names" in err
