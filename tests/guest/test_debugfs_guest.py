"""DAMON driven through debugfs on a real kernel: hot and cold told apart, live scheme stats, paddr."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from debugfs_guest import (
    COLD_BYTES,
    HOT_BYTES,
    hot_cold_workload,
    needs_debugfs,
    reset_damon,
)
from hot_cold import mean_accesses
from kdamon.kernel.debugfs import DebugfsDriver
from kdamon.kernel.ownership import OwnershipRegistry
from kdamon.kernel.tracefs import TraceSession
from kdamon.model import (
    AccessPattern,
    Context,
    Intervals,
    Kdamond,
    Region,
    Scheme,
    Snapshot,
    Target,
)
from kdamon.testing.waiting import wait_until
from kdamon.testing.workloads import Layout

pytestmark = needs_debugfs

INTERVALS = Intervals(sample_us=5000, aggr_us=100000, update_us=1000000)
WAIT_S = 120.0  # upper bound on waiting for the kernel under TCG; never reached when things work


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[DebugfsDriver]:
    reset_damon()
    yield DebugfsDriver(owners=OwnershipRegistry(tmp_path / "run"))
    reset_damon()


@pytest.fixture
def workload() -> Iterator[Layout]:
    with hot_cold_workload() as w:
        yield w


def collect(pid: int, count: int) -> list[Snapshot]:
    """The next ``count`` snapshots of kdamond ``pid`` from the damon_aggregated tracepoint."""
    snapshots: list[Snapshot] = []
    deadline = time.monotonic() + WAIT_S
    with TraceSession(pid, sample_us=INTERVALS.sample_us, aggr_us=INTERVALS.aggr_us) as session:
        for record in session.records(until=lambda: len(snapshots) >= count or time.monotonic() > deadline):
            if isinstance(record, Snapshot):
                snapshots.append(record)
    assert len(snapshots) >= count, f"only {len(snapshots)} snapshots in {WAIT_S} s"
    return snapshots


def test_hot_and_cold_buffers_told_apart(driver: DebugfsDriver, workload: Layout) -> None:
    kdamond = Kdamond(contexts=(Context(intervals=INTERVALS, targets=(Target(pid=workload.pid),)),))
    index, pid = driver.launch(kdamond)
    assert driver.state(index) == "on"
    snapshots = collect(pid, 40)[10:]  # the first aggregations still split the regions
    assert all(s.target_idx == 0 for s in snapshots)
    hot, cold = mean_accesses(snapshots, workload.hot), mean_accesses(snapshots, workload.cold)
    # Under TCG the workload touches its hot pages less often than every sampling interval.
    assert hot >= 1, f"hot buffer: {hot:.2f} accesses per aggregation (cold {cold:.2f})"
    assert cold < hot / 4, f"cold buffer: {cold:.2f} accesses per aggregation (hot {hot:.2f})"
    assert driver.stop(index)


def test_initial_regions_are_monitored(driver: DebugfsDriver, workload: Layout) -> None:
    regions = (Region(*workload.cold), Region(*workload.hot))
    if workload.hot[0] < workload.cold[0]:
        regions = regions[::-1]
    # A long update interval keeps the given regions (the next update fits them to the address space).
    intervals = Intervals(sample_us=5000, aggr_us=100000, update_us=3600 * 10**6)
    ctx = Context(intervals=intervals, targets=(Target(pid=workload.pid, regions=regions),))
    driver.apply(0, Kdamond(contexts=(ctx,)))
    assert driver.read(0).contexts[0] == ctx
    pid = driver.start(0)
    snapshots = collect(pid, 15)[5:]
    for snap in snapshots:
        assert snap.regions[0]["start"] == regions[0].start and snap.regions[-1]["end"] == regions[-1].end
        assert snap.total_size == HOT_BYTES + COLD_BYTES
    assert mean_accesses(snapshots, workload.hot) > mean_accesses(snapshots, workload.cold)


def test_scheme_stats_move(driver: DebugfsDriver, workload: Layout) -> None:
    max_accesses = INTERVALS.aggr_us // INTERVALS.sample_us
    every = Scheme(action="stat")
    hot_only = Scheme(action="stat", access_pattern=AccessPattern(nr_accesses_min=max_accesses // 2))
    ctx = Context(intervals=INTERVALS, targets=(Target(pid=workload.pid),), schemes=(every, hot_only))
    index, pid = driver.launch(Kdamond(contexts=(ctx,)))
    collect(pid, 10)
    first = driver.scheme_stats(index)
    collect(pid, 10)
    second = driver.scheme_stats(index)
    assert len(first) == len(second) == 2
    assert second[0].nr_tried > first[0].nr_tried > 0
    assert second[0].sz_tried > first[0].sz_tried
    assert 0 < second[1].sz_tried < second[0].sz_tried  # the hot buffer only
    assert driver.stop(index)
    stopped = driver.scheme_stats(index)
    # Only the kdamond thread counts: once it is gone, nothing can (the kernel waits for it to
    # exit before 'off' returns; it leaves /proc when reaped).
    wait_until(lambda: Path(f"/proc/{pid}").exists(), lambda exists: not exists, f"kdamond {pid} to exit")
    assert driver.scheme_stats(index) == stopped


def _largest_ram() -> Region:
    best = Region(0, 1)
    for line in Path("/proc/iomem").read_text().splitlines():
        span, _, name = line.strip().partition(" : ")
        if name == "System RAM":
            start, end = (int(x, 16) for x in span.split("-"))
            if end + 1 - start > best.end - best.start:
                best = Region(start, end + 1)
    return best


def test_paddr(driver: DebugfsDriver) -> None:
    ram = _largest_ram()
    assert ram.end - ram.start > 1 << 20, "no System RAM in /proc/iomem"
    ctx = Context(ops="paddr", intervals=INTERVALS, targets=(Target(regions=(ram,)),))
    index, pid = driver.launch(Kdamond(contexts=(ctx,)))
    assert driver.read(index).contexts[0].ops == "paddr"
    snapshots = collect(pid, 5)
    assert all(s.regions[0]["start"] >= ram.start and s.regions[-1]["end"] <= ram.end for s in snapshots)
    assert driver.stop(index)
    # The paddr target survives a stop (vaddr ones do not), its regions do not.
    assert driver.read(index) == Kdamond(contexts=(attrs.evolve(ctx, targets=(Target(),)),))
