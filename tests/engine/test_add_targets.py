"""Processes added to a running monitor (``kdamon record --include-children`` on the engine):
set up as the first targets are, appended in order; a process already gone is left out."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kdamon.engine.core import Callbacks, Monitor
from kdamon.engine.ops.synthetic import SyntheticOps, synthetic_context
from kdamon.engine.ops.vaddr import VaddrOps
from kdamon.errors import ConfigError, EngineError
from kdamon.model.config import Context, Target
from kdamon.model.snapshot import Snapshot
from test_live_process import INTERVALS, assert_hot_found_lately, hot_missed, start_workload, uffd_available

WAIT_S = 120.0  # a safety net against hangs on a loaded host, never a measured bound


class Recorder:
    """Snapshots per target index, from a monitor running in its thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_target: dict[int, list[Snapshot]] = {}

    def __call__(self, monitor: Monitor) -> None:
        with self.lock:
            for snapshot in monitor.snapshots():
                self.by_target.setdefault(snapshot.target_idx, []).append(snapshot)

    def count(self, target: int) -> int:
        with self.lock:
            return len(self.by_target.get(target, ()))

    def snapshots(self, target: int) -> list[Snapshot]:
        with self.lock:
            return list(self.by_target.get(target, ()))

    def wait(self, what: str, ready: Callable[[], bool], monitor: Monitor) -> None:
        deadline = time.monotonic() + WAIT_S
        while not ready():
            assert monitor.running, "the monitor stopped"
            assert time.monotonic() < deadline, f"gave up waiting for {what}"
            time.sleep(0.05)


def test_a_process_added_while_running_is_monitored_like_the_first(tmp_path: Path) -> None:
    uffd = uffd_available()  # fast checks where the host has them (smaps takes ~20 ms a sample here)
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    first, _ = start_workload(tmp_path / "first", uffd=uffd)
    second, layout = start_workload(tmp_path / "second", uffd=uffd)
    recorder = Recorder()
    monitor = Monitor(
        Context(targets=(Target(pid=first.pid),), intervals=INTERVALS), callbacks=Callbacks(after_aggregation=recorder)
    )
    monitor.start()
    try:
        recorder.wait("the first target's snapshots", lambda: recorder.count(0) >= 2, monitor)
        assert monitor.take_added() == []
        monitor.add_targets([Target(pid=second.pid)])
        recorder.wait(  # at least 12, and on a loaded machine until the regions have adapted to the hot area
            "the added target's hot area found",
            lambda: recorder.count(1) >= 12 and hot_missed(recorder.snapshots(1), layout) is None,
            monitor,
        )
        assert monitor.take_added() == [(1, Target(pid=second.pid))]
        assert monitor.take_added() == []
        assert [t.pid for t in monitor.ctx.targets] == [first.pid, second.pid]
        assert len(monitor.ops.kinds) == 2  # type: ignore[attr-defined]  # (vaddr: one check kind per target)
    finally:
        monitor.stop()
        monitor.join()
        for process in (first, second):
            process.kill()
            process.wait()
    assert_hot_found_lately(recorder.by_target[1], layout)


def test_a_process_gone_before_it_joins_is_left_out(tmp_path: Path) -> None:
    alive, _ = start_workload(tmp_path, uffd=False)
    gone = subprocess.Popen(["true"])
    gone.wait()
    recorder = Recorder()
    monitor = Monitor(
        Context(targets=(Target(pid=alive.pid),), intervals=INTERVALS), callbacks=Callbacks(after_aggregation=recorder)
    )
    monitor.start()
    try:
        monitor.add_targets([Target(pid=gone.pid)])
        recorder.wait("two aggregations", lambda: recorder.count(0) >= 2, monitor)
        assert monitor.take_added() == [] and len(monitor.ctx.targets) == 1
        assert set(recorder.by_target) == {0}
    finally:
        monitor.stop()
        monitor.join()
        alive.kill()
        alive.wait()


def test_targets_are_checked_when_asked_for() -> None:
    synthetic = Monitor(synthetic_context(), SyntheticOps([]))
    with pytest.raises(EngineError, match="cannot take targets while they run"):
        synthetic.add_targets([Target(pid=1)])
    vaddr = Monitor(Context(targets=(Target(pid=os.getpid()),)), VaddrOps(["smaps"]))
    with pytest.raises(ConfigError, match="give the pid"):
        vaddr.add_targets([Target()])
