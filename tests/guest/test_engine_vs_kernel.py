"""The pure-Python engine against the kernel's DAMON on the same process (guest only).

A hot/cold workload is monitored first by a real kdamond (snapshots from
tracefs), then by the engine with the best access check the guest offers:
userfaultfd write-protect where the kernel has PAGEMAP_SCAN (6.7+, the
workload then registers its memory), page_idle or soft-dirty elsewhere.
Sampling is random on both sides, so the comparison is of what a user
relies on: the same initial regions (the three-biggest-gaps rule on the
same mappings), region counts within bounds, and the hot area found hot.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("numpy", reason="the engine needs numpy in the guest image")

from hot_cold import assert_hot_stands_out, mean_accesses  # noqa: E402
from kdamon.engine.core import Callbacks, Monitor  # noqa: E402
from kdamon.engine.ops.pagemap import pagemap_scan_supported  # noqa: E402
from kdamon.engine.ops.probe import probe  # noqa: E402
from kdamon.kernel.sysfs import SysfsDriver  # noqa: E402
from kdamon.kernel.tracefs import TraceSession  # noqa: E402
from kdamon.model import Context, Intervals, Kdamond, NrRegions, Snapshot, Target  # noqa: E402
from kdamon.testing.workloads import Layout  # noqa: E402

INTERVALS = Intervals(sample_us=5000, aggr_us=100_000, update_us=60_000_000)
NR_REGIONS = NrRegions(10, 1000)
SECONDS = 4.0
ENGINE_AGGREGATIONS = 12
ENGINE_TIMEOUT_S = 240.0


@pytest.fixture
def workload(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Layout]]:
    layout_file = tmp_path / "layout.json"
    # userfaultfd async write-protect is useful to the engine only with PAGEMAP_SCAN
    uffd = ["--uffd"] if pagemap_scan_supported() else []
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kdamon.testing.workloads",
            "hot_cold",
            "--sizes",
            "8MiB",
            "64MiB",
            "--seconds",
            "300",
            *uffd,
            "--layout",
            str(layout_file),
        ]
    )
    while not layout_file.exists():
        assert process.poll() is None, "the workload died"
        time.sleep(0.05)
    yield process, Layout.from_json(layout_file.read_text())
    process.kill()
    process.wait()


def covered(snapshot: Snapshot) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for region in snapshot.states():
        if spans and spans[-1][1] == region.start:
            spans[-1] = (spans[-1][0], region.end)
        else:
            spans.append((region.start, region.end))
    return spans


def kernel_snapshots(driver: SysfsDriver, pid: int) -> list[Snapshot]:
    context = Context(ops="vaddr", intervals=INTERVALS, nr_regions=NR_REGIONS, targets=(Target(pid=pid),))
    index, kdamond_pid = driver.launch(Kdamond(contexts=(context,)))
    deadline = time.monotonic() + SECONDS
    try:
        with TraceSession(
            kdamond_pid, kdamond_idx=index, sample_us=INTERVALS.sample_us, aggr_us=INTERVALS.aggr_us
        ) as session:
            records = list(session.records(until=lambda: time.monotonic() > deadline))
    finally:
        driver.stop(index)
    return [r for r in records if isinstance(r, Snapshot)]


def engine_snapshots(pid: int) -> tuple[Monitor, list[Snapshot]]:
    context = Context(ops="vaddr", intervals=INTERVALS, nr_regions=NR_REGIONS, targets=(Target(pid=pid),))
    snapshots: list[Snapshot] = []

    def collect(m: Monitor) -> bool:
        # Python under TCG samples far slower than the kernel: count aggregations, not seconds.
        snapshots.extend(m.snapshots())
        return len(snapshots) >= ENGINE_AGGREGATIONS

    monitor = Monitor(context, seed=1, callbacks=Callbacks(after_aggregation=collect))
    monitor.run(duration_us=int(ENGINE_TIMEOUT_S * 1e6))
    return monitor, snapshots


def test_engine_and_kernel_agree_on_regions_and_the_hot_area(
    driver: SysfsDriver,
    workload: tuple[subprocess.Popen[bytes], Layout],
) -> None:
    process, layout = workload
    check = probe(process.pid)
    if check.kind == "smaps":
        pytest.skip(
            "the engine could watch the workload only through smaps, per mapping (this kernel "
            f"lacks page_idle, userfaultfd with PAGEMAP_SCAN and soft-dirty):\n{check.explain()}"
        )
    kernel = kernel_snapshots(driver, process.pid)
    monitor, engine = engine_snapshots(process.pid)
    assert len(kernel) >= 10 and len(engine) >= 10, monitor.ops.name

    # the same three ranges from the same mappings (both sides keep covering them)
    assert covered(kernel[0]) == covered(engine[0])
    for snapshots in (kernel, engine):
        for snapshot in snapshots:
            assert len(snapshot.regions) <= NR_REGIONS.max
    # The first aggregation still has the initial split, which (in the kernel too) cuts each of
    # the three ranges into floor(range / (total / min)) pieces and may give fewer than min;
    # every later one has been split and then merged under the total / min size limit.
    counts = [len(snapshot.regions) for snapshot in engine]
    assert min(counts[1:]) >= NR_REGIONS.min, counts

    late_kernel, late_engine = kernel[len(kernel) // 2 :], engine[len(engine) // 2 :]
    for who, late in (("kernel", late_kernel), (f"engine ({monitor.ops.name})", late_engine)):
        hot = mean_accesses(late, layout.hot)
        cold = mean_accesses(late, layout.cold)
        assert_hot_stands_out(hot, cold, late[0].max_nr_accesses, who)
