"""Region adaptation: splits only while at most max/2 regions, merges within the threshold, vaddr's regions.

The region counts come from ``damon_aggregated`` traces, which show the
regions after each aggregation's merge and before its split; so from one
snapshot to the next the count grows only by the split in between (each
region in two, in three while the count is below max/3 and unchanged) and,
above max/2, not at all before 7.0, by every ``max/(max - count)``-th region
from 7.0 on (``damon-abi.md`` 9.11).
"""

from __future__ import annotations

import mmap
import os
import select
import statistics
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kdamon.check.emit import NOTE
from kdamon.check.harness import Observation, calibrate, observe
from kdamon.check.invariants import runs, split_growth_limit, sz_limit, three_regions, unmerged_neighbours
from kdamon.kernel.sysfs import SysfsDriver
from kdamon.model import Context, Intervals, Kdamond, NrRegions, Region, Target
from kdamon.testing.workloads import Workload, start

pytestmark = pytest.mark.usefixtures("trace_keepalive")  # see conftest.py
RecordProperty = Callable[[str, object], None]
Version = tuple[int, int]
STRIPES = NrRegions(min=3, max=16)
IDLE = NrRegions(min=10, max=200)
FEW = NrRegions(min=3, max=6)
NEW_MAPPING = 8 << 20
UPDATE_AGGREGATIONS = 5


def _consecutive(seen: Observation) -> list[tuple[int, int]]:
    """Region counts of consecutive snapshots, leaving out pairs with a snapshot missing between them."""
    snaps = seen.snapshots
    gaps = [b.time_ns - a.time_ns for a, b in zip(snaps, snaps[1:], strict=False)]
    if not gaps:
        return []
    usual = statistics.median(gaps)
    return [
        (a.nr_regions, b.nr_regions) for a, b, gap in zip(snaps, snaps[1:], gaps, strict=False) if gap <= 1.5 * usual
    ]


def test_split_only_below_half_max(raw_driver: SysfsDriver, version: Version, record_property: RecordProperty) -> None:
    """regions split in two (three below max/3) while at most max/2 of them, above only as the release allows"""
    with start("stripes") as workload:
        layout = workload.layout
        context = Context(
            intervals=calibrate(layout).intervals,
            nr_regions=STRIPES,
            targets=(Target(pid=layout.pid, regions=(Region(*layout.span),)),),
        )
        seen = observe(raw_driver, Kdamond(contexts=(context,)), aggregations=16)
    pairs = _consecutive(seen)
    half, third = STRIPES.max // 2, STRIPES.max // 3
    counts = [s.nr_regions for s in seen.snapshots]
    above = "none" if version < (7, 0) else "every max/(max - count)-th region"
    record_property(
        NOTE,
        f"region counts {counts} on {len(layout.areas)} alternating stripes "
        f"(max {STRIPES.max}: splits above {half}: {above}; at most 2x from {third} on)",
    )
    too_fast = [(a, b) for a, b in pairs if b - a > split_growth_limit(a, STRIPES.max, version)]
    assert not too_fast, f"the count grew faster than a split allows (max/2 = {half}, max/3 = {third}): {too_fast}"
    assert any(b > a for a, b in pairs), f"the count never grew by splitting: {counts}"
    assert max(counts) > half, f"the count never passed max/2 = {half} on {len(layout.areas)} stripes: {counts}"


def test_idle_neighbours_merge(
    raw_driver: SysfsDriver, shared_hot_cold: Workload, record_property: RecordProperty
) -> None:
    """touching regions with the same access rate merge up to the size limit (total / min regions)"""
    layout = shared_hot_cold.layout
    cold = layout.areas[1]
    context = Context(
        intervals=calibrate(layout).intervals,
        nr_regions=IDLE,
        targets=(Target(pid=layout.pid, regions=(Region(*cold),)),),
    )
    seen = observe(raw_driver, Kdamond(contexts=(context,)), aggregations=10)
    settled = seen.snapshots[3:]
    assert len(settled) >= 4, f"only {len(seen.snapshots)} aggregations were traced"
    limit = sz_limit(cold[1] - cold[0], IDLE)
    unmerged = [
        f"aggregation {n + 3}: {pair}" for n, s in enumerate(settled) for pair in unmerged_neighbours(s, limit, *cold)
    ]
    counts = [s.nr_regions for s in settled]
    record_property(
        NOTE,
        f"an idle {(cold[1] - cold[0]) >> 20} MiB area with min {IDLE.min}, max {IDLE.max} regions: "
        f"counts {counts} (merge limit {limit >> 10} KiB, so at most {2 * IDLE.min + 1})",
    )
    assert not unmerged, f"{len(unmerged)} neighbours left unmerged, first: {'; '.join(unmerged[:2])}"
    assert max(counts) <= 2 * IDLE.min + 1, f"{max(counts)} regions on an idle area: merging did not keep up"
    assert max(counts) >= IDLE.min, f"the count never reached min = {IDLE.min}: merges went past the size limit"


def test_merge_threshold_grows_until_max(raw_driver: SysfsDriver, record_property: RecordProperty) -> None:
    """more regions than max, too different to merge, merge with a doubling threshold until at most max remain"""
    with start("stripes") as workload:
        layout = workload.layout
        # One long sample per aggregation: nr_accesses is 0 or 1 (a written stripe is surely written within
        # it) and the first merge threshold 0, so only a grown threshold can merge the stripes.
        sample_us = 20 * calibrate(layout).intervals.sample_us
        intervals = Intervals(sample_us=sample_us, aggr_us=sample_us, update_us=3_600_000_000)
        starts = [a[0] for a in layout.areas]
        regions = tuple(Region(a, b) for a, b in zip(starts, [*starts[1:], layout.areas[-1][1]], strict=True))
        context = Context(intervals=intervals, nr_regions=FEW, targets=(Target(pid=layout.pid, regions=regions),))
        seen = observe(raw_driver, Kdamond(contexts=(context,)), aggregations=6)
    counts = [s.nr_regions for s in seen.snapshots]
    record_property(
        NOTE, f"{len(regions)} given regions of alternating written and idle stripes, max {FEW.max}: counts {counts}"
    )
    assert counts, "no aggregation was traced"
    assert max(counts) <= FEW.max, f"{max(counts)} regions after a merge, more than max {FEW.max}: {counts}"


def _hex_runs(extents: list[tuple[int, int]]) -> str:
    return ", ".join(f"{a:#x}-{b:#x}" for a, b in extents)


def test_vaddr_initial_three_regions(
    damon_sysfs: SysfsDriver, hot_cold_workload: Workload, record_property: RecordProperty
) -> None:
    """a vaddr target without regions is monitored over its mappings less the two biggest gaps"""
    layout = hot_cold_workload.layout
    expected = three_regions(Path(f"/proc/{layout.pid}/maps").read_text())
    context = Context(intervals=calibrate(layout).intervals, targets=(Target(pid=layout.pid),))
    seen = observe(damon_sysfs, Kdamond(contexts=(context,)), aggregations=3)
    assert seen.snapshots, "no aggregation was traced"
    got = [runs(s) for s in seen.snapshots]
    record_property(NOTE, f"expected {_hex_runs(expected)}; {len(got)} snapshots")
    wrong = [n for n, extents in enumerate(got) if extents != expected]
    assert not wrong, f"aggregation {wrong[0]} covers {_hex_runs(got[wrong[0]])}, not {_hex_runs(expected)}"


class _Mapper:
    """A forked process that maps and writes a new area when told to, then keeps writing it."""

    def __init__(self) -> None:
        self._go_r, self._go_w = os.pipe()
        self._done_r, self._done_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            try:
                os.read(self._go_r, 1)
                area = mmap.mmap(-1, NEW_MAPPING, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
                import ctypes

                base = ctypes.addressof(ctypes.c_char.from_buffer(area))
                ones = b"\x01" * (NEW_MAPPING // mmap.PAGESIZE)
                area[:: mmap.PAGESIZE] = ones
                os.write(self._done_w, f"{base}\n".encode())
                while True:
                    area[:: mmap.PAGESIZE] = ones
            finally:
                os._exit(0)

    def map_now(self) -> tuple[int, int]:
        os.write(self._go_w, b"x")
        ready, _, _ = select.select([self._done_r], [], [], 30)
        assert ready, "the mapper process did not map its area within 30 s"
        base = int(os.read(self._done_r, 64).decode().strip())
        return base, base + NEW_MAPPING

    def stop(self) -> None:
        os.kill(self.pid, 9)
        os.waitpid(self.pid, 0)
        for fd in (self._go_r, self._go_w, self._done_r, self._done_w):
            os.close(fd)


@pytest.fixture
def mapper() -> Iterator[_Mapper]:
    m = _Mapper()
    yield m
    m.stop()


def _covered(extents: list[tuple[int, int]], area: tuple[int, int]) -> bool:
    return any(a <= area[0] and area[1] <= b for a, b in extents)


def test_new_mapping_monitored_within_update_interval(
    damon_sysfs: SysfsDriver, mapper: _Mapper, record_property: RecordProperty
) -> None:
    """a mapping a target makes is monitored after one update interval, with the regions of the new layout"""
    base = Intervals(sample_us=5000, aggr_us=100_000)
    intervals = Intervals(sample_us=base.sample_us, aggr_us=base.aggr_us, update_us=UPDATE_AGGREGATIONS * base.aggr_us)
    context = Context(intervals=intervals, targets=(Target(pid=mapper.pid),))
    mapped: list[tuple[int, int]] = []
    at = 3  # observe() calls the action as soon as this many snapshots were traced
    seen = observe(
        damon_sysfs,
        Kdamond(contexts=(context,)),
        aggregations=at + 1 + 3 * UPDATE_AGGREGATIONS,
        at_aggregation=at,
        action=lambda _index: mapped.append(mapper.map_now()),
    )
    assert mapped, "the new mapping was never made"
    area = mapped[0]
    expected = three_regions(Path(f"/proc/{mapper.pid}/maps").read_text())
    first = next((n for n, s in enumerate(seen.snapshots) if n >= at and _covered(runs(s), area)), None)
    record_property(
        NOTE,
        f"mapped {area[0]:#x}-{area[1]:#x} after aggregation {at}; first covered at "
        f"{first} (update every {UPDATE_AGGREGATIONS} aggregations, allowed {UPDATE_AGGREGATIONS + 2} "
        f"later: the aggregation in progress and the trace reader's lag)",
    )
    assert first is not None, f"the new mapping was never monitored in {len(seen.snapshots)} aggregations"
    assert first - at <= UPDATE_AGGREGATIONS + 2, f"monitored {first - at} aggregations after the mapping"
    floor = context.nr_regions.min // 2
    few = [(n, s.nr_regions) for n, s in enumerate(seen.snapshots) if n >= at and s.nr_regions < floor]
    assert not few, f"(aggregation, regions) {few}: an update keeps the regions it had (not under min/2 = {floor})"
    last = runs(seen.snapshots[-1])
    assert last == expected, f"after the update the regions cover {_hex_runs(last)}, not {_hex_runs(expected)}"
