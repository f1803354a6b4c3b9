"""Monitoring behaviour on the bundled workloads: the hot set is found, the working set estimated."""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Callable

import pytest

from kdamon.check.emit import NOTE
from kdamon.check.harness import calibrate, observe
from kdamon.check.invariants import area_mean_accesses, wss_bytes
from kdamon.kernel.sysfs import SysfsDriver
from kdamon.model import Context, Kdamond, NrRegions, Region, Snapshot, Target
from kdamon.testing.workloads import Layout, Workload

pytestmark = pytest.mark.usefixtures("trace_keepalive")  # see conftest.py
RecordProperty = Callable[[str, object], None]
WSS_BOUNDS = (0.5, 1.5)  # estimate / hot area size
DEFAULT_NR_REGIONS = NrRegions()


def _context(layout: Layout, *, fixed: bool, nr_regions: NrRegions = DEFAULT_NR_REGIONS) -> tuple[Context, str]:
    cal = calibrate(layout)
    regions = (Region(*layout.span),) if fixed else ()
    return Context(
        intervals=cal.intervals, nr_regions=nr_regions, targets=(Target(pid=layout.pid, regions=regions),)
    ), cal.note


def test_hot_cold_hot_set(
    damon_sysfs: SysfsDriver, hot_cold_workload: Workload, record_property: RecordProperty
) -> None:
    """vaddr over the whole process finds the hot area hot and the cold area cold"""
    layout = hot_cold_workload.layout
    context, note = _context(layout, fixed=False)
    seen = observe(damon_sysfs, Kdamond(contexts=(context,)), aggregations=20)
    assert len(seen.snapshots) >= 10, (
        f"only {len(seen.snapshots)} aggregations traced ({seen.rate_note(context.intervals.aggr_us)})"
    )
    late = seen.snapshots[len(seen.snapshots) // 2 :]
    top = context.max_nr_accesses
    hot = statistics.mean(area_mean_accesses(s.regions, *layout.areas[0]) for s in late)
    cold = statistics.mean(area_mean_accesses(s.regions, *layout.areas[1]) for s in late)
    record_property(
        NOTE,
        f"hot area {hot:.1f}/{top}, cold area {cold:.1f}/{top}; {note}; {seen.rate_note(context.intervals.aggr_us)}",
    )
    assert hot >= top / 2, f"the hot area scored {hot:.1f} of {top} (want at least half)"
    assert cold <= top / 5, f"the cold area scored {cold:.1f} of {top} (want at most a fifth)"


def test_hot_cold_wss(damon_sysfs: SysfsDriver, hot_cold_workload: Workload, record_property: RecordProperty) -> None:
    """the working-set estimate of the hot/cold workload is within bounds of its hot area"""
    layout = hot_cold_workload.layout
    context, note = _context(layout, fixed=True)
    seen = observe(damon_sysfs, Kdamond(contexts=(context,)), aggregations=15)
    assert len(seen.snapshots) >= 8, f"only {len(seen.snapshots)} aggregations traced"
    threshold = max(1, context.max_nr_accesses // 5)
    estimate = statistics.median(wss_bytes(s.regions, threshold) for s in seen.snapshots[5:])
    hot = layout.areas[0][1] - layout.areas[0][0]
    low, high = WSS_BOUNDS
    record_property(
        NOTE,
        f"median estimate {estimate / 2**20:.1f} MiB for a {hot / 2**20:.0f} MiB hot area "
        f"(bounds {low}x-{high}x, regions with nr_accesses >= {threshold}); {note}",
    )
    assert low * hot <= estimate <= high * hot, (
        f"estimate {estimate / 2**20:.1f} MiB outside {low}x-{high}x of {hot / 2**20:.0f} MiB"
    )


def _hottest(snapshot: Snapshot, layout: Layout, top: int) -> int | None:
    """The area clearly hotter than every other one in this snapshot, if any."""
    means = [area_mean_accesses(snapshot.regions, *area) for area in layout.areas]
    order = sorted(range(len(means)), key=means.__getitem__, reverse=True)
    first, second = means[order[0]], means[order[1]]
    return order[0] if first >= top / 4 and first >= 2 * second else None


def _moves(workload: Workload, damon_sysfs: SysfsDriver, record_property: RecordProperty) -> list[tuple[int, int]]:
    """Observe a moving hot area for a cycle and a step; the hottest area's moves (from, to)."""
    layout = workload.layout
    context, note = _context(layout, fixed=True, nr_regions=NrRegions(min=10, max=100))
    cycle_s = len(layout.sequence()) * layout.step_s
    seen = observe(damon_sysfs, Kdamond(contexts=(context,)), aggregations=1, seconds=cycle_s + 2 * layout.step_s)
    rate = seen.aggregations_per_s
    record_property(NOTE, f"{note}; {seen.rate_note(context.intervals.aggr_us)}")
    if rate * layout.step_s < 2:
        pytest.skip(
            f"the kdamond aggregated {rate:.1f} times/s here, fewer than 2 per {layout.step_s:g} s workload "
            f"step: this guest is too slow to follow the moving hot area ({seen.rate_note(context.intervals.aggr_us)})"
        )
    runs: list[int] = []
    for snapshot in seen.snapshots:
        area = _hottest(snapshot, layout, context.max_nr_accesses)
        if area is not None and (not runs or runs[-1] != area):
            runs.append(area)
    assert len(set(runs)) == len(layout.areas), f"the hottest area went {runs}; not every area was found hot"
    return list(itertools.pairwise(runs))


def test_stairs_hot_area_moves(
    damon_sysfs: SysfsDriver, stairs_workload: Workload, record_property: RecordProperty
) -> None:
    """on the stairs workload the hot area is found moving forward, one area at a time"""
    n = len(stairs_workload.layout.areas)
    moves = _moves(stairs_workload, damon_sysfs, record_property)
    wrong = [m for m in moves if m[1] != (m[0] + 1) % n]
    assert len(wrong) <= len(moves) // 4, f"moves {moves}: {wrong} are not one step forward"


def test_zigzag_hot_area_moves(
    damon_sysfs: SysfsDriver, zigzag_workload: Workload, record_property: RecordProperty
) -> None:
    """on the zigzag workload the hot area is found moving back and forth, one area at a time"""
    moves = _moves(zigzag_workload, damon_sysfs, record_property)
    wrong = [m for m in moves if abs(m[1] - m[0]) != 1]
    assert len(wrong) <= len(moves) // 4, f"moves {moves}: {wrong} are not to a neighbouring area"
    assert any(b < a for a, b in moves) and any(b > a for a, b in moves), f"moves {moves} never turned back"
