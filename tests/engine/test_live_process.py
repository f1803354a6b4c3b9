"""Monitoring a real child process on this host (smaps and uffd + PAGEMAP_SCAN checks)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import kdamon
from kdamon.engine.core import Callbacks, Monitor
from kdamon.engine.ops.checks import CheckKind
from kdamon.engine.ops.pagemap import pagemap_scan_supported
from kdamon.engine.ops.probe import ops_for_context, probe
from kdamon.engine.ops.vaddr import VaddrOps
from kdamon.engine.uffd import AsyncWriteProtect
from kdamon.engine.workload import WorkloadLayout
from kdamon.errors import EngineError
from kdamon.model.config import AccessPattern, Context, Intervals, Scheme, Target
from kdamon.model.results import Snapshot

INTERVALS = Intervals(sample_us=5000, aggr_us=100_000, update_us=1_000_000)


def uffd_available() -> bool:
    try:
        AsyncWriteProtect().close()
    except EngineError:
        return False
    return pagemap_scan_supported()


needs_uffd = pytest.mark.skipif(not uffd_available(),
                                reason="needs userfaultfd async write-protect and PAGEMAP_SCAN "
                                       "(Linux 6.7+)")


def start_workload(tmp_path: Path, *, uffd: bool, seconds: float = 60.0
                   ) -> tuple[subprocess.Popen[bytes], WorkloadLayout]:
    layout_file = tmp_path / "layout.json"
    command = [sys.executable, "-m", "kdamon.engine.workload", "--hot", "8MiB", "--cold",
               "64MiB", "--seconds", str(seconds), "--layout", str(layout_file)]
    if uffd:
        command.append("--uffd")
    package_root = str(Path(kdamon.__file__).resolve().parents[1])
    process = subprocess.Popen(command, env={**os.environ, "PYTHONPATH": package_root})
    while not layout_file.exists():
        if process.poll() is not None:
            raise AssertionError(f"the workload exited with {process.returncode}")
        time.sleep(0.02)
    return process, WorkloadLayout.from_json(layout_file.read_text())


@pytest.fixture
def plain_workload(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], WorkloadLayout]]:
    process, layout = start_workload(tmp_path, uffd=False)
    yield process, layout
    process.kill()
    process.wait()


@pytest.fixture
def uffd_workload(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], WorkloadLayout]]:
    process, layout = start_workload(tmp_path, uffd=True)
    yield process, layout
    process.kill()
    process.wait()


def mean_accesses(snapshot: Snapshot, lo: int, hi: int) -> float:
    total = weighted = 0
    for region in snapshot.regions:
        overlap = min(region.end, hi) - max(region.start, lo)
        if overlap > 0:
            total += overlap
            weighted += overlap * region.nr_accesses
    assert total == hi - lo, "the monitored regions must cover the area"
    return weighted / total


def monitor_live(pid: int, kind: CheckKind, aggregations: int,
                 schemes: tuple[Scheme, ...] = ()) -> tuple[Monitor, list[Snapshot]]:
    """Monitor until ``aggregations`` aggregations are done (or the process exits)."""
    context = Context(targets=(Target(pid=pid),), intervals=INTERVALS, schemes=schemes)
    snapshots: list[Snapshot] = []

    def after_aggregation(monitor: Monitor) -> bool:
        snapshots.extend(monitor.snapshots())
        return len(snapshots) >= aggregations

    monitor = Monitor(context, VaddrOps([kind]), seed=7,
                      callbacks=Callbacks(after_aggregation=after_aggregation))
    monitor.run(duration_us=300_000_000)  # a safety net only
    return monitor, snapshots


def assert_hot_found(snapshots: list[Snapshot], layout: WorkloadLayout) -> None:
    assert len(snapshots) == 12
    for snapshot in snapshots[-3:]:
        hot = mean_accesses(snapshot, layout.hot_start, layout.hot_end)
        cold = mean_accesses(snapshot, layout.cold_start, layout.cold_end)
        assert hot >= 0.5 * snapshot.max_nr_accesses, f"hot area seen {hot:.1f} times"
        assert cold <= 0.2 * hot, f"cold area seen {cold:.1f} times, hot {hot:.1f}"


def test_smaps_referenced_finds_the_hot_area(plain_workload: tuple[subprocess.Popen[bytes],
                                                                   WorkloadLayout]) -> None:
    process, layout = plain_workload
    monitor, snapshots = monitor_live(process.pid, "smaps", aggregations=12)
    assert "per mapping" in monitor.ops.capabilities and "reclaim" in monitor.ops.capabilities
    assert_hot_found(snapshots, layout)


@needs_uffd
def test_uffd_pagemap_scan_finds_the_hot_area(uffd_workload: tuple[subprocess.Popen[bytes],
                                                                   WorkloadLayout]) -> None:
    process, layout = uffd_workload
    monitor, snapshots = monitor_live(process.pid, "uffd", aggregations=12)
    assert "writes only" in monitor.ops.capabilities
    assert_hot_found(snapshots, layout)


@needs_uffd
def test_probe_prefers_uffd_for_a_cooperating_process(
        uffd_workload: tuple[subprocess.Popen[bytes], WorkloadLayout],
        plain_workload: tuple[subprocess.Popen[bytes], WorkloadLayout]) -> None:
    cooperating = probe(uffd_workload[0].pid)
    plain = probe(plain_workload[0].pid)
    if cooperating.kind == "page_idle":
        pytest.skip("idle page tracking is available here and beats uffd")
    assert cooperating.kind == "uffd"
    assert plain.kind in ("soft_dirty", "smaps")
    assert any(kind == "uffd" and "userfaultfd" in why for kind, why in plain.rejected)
    assert str(plain_workload[0].pid) in plain.explain()
    ops = ops_for_context(Context(targets=(Target(pid=uffd_workload[0].pid),
                                           Target(pid=plain_workload[0].pid))))
    assert ops.name == f"vaddr/{plain.kind}+uffd"


@pytest.mark.skipif(os.geteuid() != 0, reason="process_madvise(MADV_COLD) on another "
                                              "process needs root here")
def test_cold_action_is_applied_to_the_child(plain_workload: tuple[subprocess.Popen[bytes],
                                                                   WorkloadLayout]) -> None:
    process, layout = plain_workload
    scheme = Scheme(action="cold", access_pattern=AccessPattern(nr_accesses_max=0, age_min=3))
    monitor, _ = monitor_live(process.pid, "smaps", aggregations=12, schemes=(scheme,))
    stats = monitor.scheme_stats()[0]
    assert stats.nr_applied > 0 and stats.sz_applied > 0
    assert stats.nr_tried >= stats.nr_applied


def test_monitor_stops_when_the_process_exits(tmp_path: Path) -> None:
    process, _ = start_workload(tmp_path, uffd=False, seconds=1.0)
    try:
        monitor, _ = monitor_live(process.pid, "smaps", aggregations=10**6)
        assert not monitor.ops.target_valid(monitor.ctx.targets[0])
        assert process.poll() is not None
    finally:
        process.kill()
        process.wait()


def test_missing_process_is_reported() -> None:
    with pytest.raises(EngineError, match="does not exist"):
        probe(2**22 + 12345)
