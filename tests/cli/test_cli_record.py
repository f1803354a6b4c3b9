"""kdamon record on the engine: a readable file, no progress line in a pipe, and a
readable file after the recorder is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import Kdamon

from kdamon.backend.host import ENV_VARS, Host, HostPaths
from kdamon.errors import RecordFormatError
from kdamon.records.detect import open_any
from kdamon.records.reader import RecordReader

WORKLOAD = [sys.executable, "-m", "kdamon.engine.workload", "--hot", "1MiB", "--cold", "4MiB", "--uffd"]
FAST = ["--sample", "2ms", "--aggr", "20ms"]


def test_record_command_on_engine(tmp_path: Path, kdamon: Kdamon) -> None:
    out = tmp_path / "rec.kdr"
    code, stdout, err = kdamon(Host(HostPaths.under(tmp_path)), "record", "-o", str(out), "--duration", "2",
                               *FAST, "--", *WORKLOAD, "--seconds", "30")
    assert code == 0, err
    assert "\r" not in err and "kdamon's engine" in err and "(after 2 s)" in err
    source = open_any(out)
    assert (source.meta.producer, source.meta.ops, source.meta.aggr_us) == ("engine", "vaddr", 20000)
    snapshots = list(source.snapshots())
    assert len(snapshots) >= 2 and not source.truncated
    assert all(len(s.regions) > 0 for s in snapshots)


def test_record_stops_when_the_target_exits(tmp_path: Path, kdamon: Kdamon) -> None:
    out = tmp_path / "rec.kdr"
    code, _, err = kdamon(Host(HostPaths.under(tmp_path)), "record", "-o", str(out), "--duration", "600",
                          *FAST, "--", *WORKLOAD, "--seconds", "1")
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
        tmp_path: Path, kdamon: Kdamon, monkeypatch: pytest.MonkeyPatch) -> None:
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
    code, _, err = kdamon(Host(HostPaths.under(tmp_path)), "record", "-o", str(keep), "--aggr", "10s",
                          "--backend", "engine", "--", sys.executable, "-c", "pass")
    assert code == 1 and "no snapshot was recorded" in err and "left as it was" in err
    assert keep.read_bytes() == b"an earlier recording"


def test_killed_recorder_leaves_a_readable_file(tmp_path: Path) -> None:
    paths = HostPaths.under(tmp_path)
    env = dict(os.environ)
    for field, var in ENV_VARS.items():
        env[var] = str(getattr(paths, field))
    out = tmp_path / "rec.kdr"
    recorder = subprocess.Popen([sys.executable, "-m", "kdamon", "record", "-o", str(out), *FAST,
                                 "--", *WORKLOAD, "--seconds", "60"],
                                env=env, stderr=subprocess.PIPE, start_new_session=True)
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
        code, _, err = kdamon(host, "record", "-o", str(out), "--duration", "1.5", *FAST, "--backend", "engine",
                              *(arg for w in workloads for arg in ("--pid", str(w.pid))))
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
