"""Invariants of monitoring results on the kernel, and the kernel against kdamon's reference engine (``differential``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kdamon.check.differential import differences, profile
from kdamon.check.emit import NOTE
from kdamon.check.harness import calibrate, observe
from kdamon.check.invariants import snapshot_violations
from kdamon.kernel.sysfs import SysfsDriver
from kdamon.model import Context, Kdamond, NrRegions, Region, Snapshot, Target
from kdamon.testing.workloads import Layout, Workload

pytestmark = pytest.mark.usefixtures("trace_keepalive")  # see conftest.py
RecordProperty = Callable[[str, object], None]
NR_REGIONS = NrRegions(min=10, max=30)


def _violations(
    snapshots: tuple[Snapshot, ...] | list[Snapshot], nr_regions: NrRegions, extra_samples: int = 0
) -> list[str]:
    """Broken invariants of a run; the minimum region count only in its second half (settled)."""
    found = []
    for number, snapshot in enumerate(snapshots):
        settled = number >= len(snapshots) // 2
        found += [
            f"aggregation {number}: {v}"
            for v in snapshot_violations(snapshot, nr_regions, settled=settled, extra_samples=extra_samples)
        ]
    return found


@pytest.fixture(scope="module")
def kernel_run(raw_driver: SysfsDriver, shared_hot_cold: Workload) -> tuple[Context, list[Snapshot]]:
    """The hot/cold workload's span monitored by the kernel: the context and its snapshots."""
    layout = shared_hot_cold.layout
    context = Context(
        intervals=calibrate(layout).intervals,
        nr_regions=NR_REGIONS,
        targets=(Target(pid=layout.pid, regions=(Region(*layout.span),)),),
    )
    return context, list(observe(raw_driver, Kdamond(contexts=(context,)), aggregations=12).snapshots)


def test_kernel_snapshots_sound(
    kernel_run: tuple[Context, list[Snapshot]], record_property: RecordProperty, version: tuple[int, int]
) -> None:
    """kernel snapshots: sorted, disjoint, page-aligned regions, at most max (and, settled, at least min), nr_accesses <= aggr/sample"""
    _, snapshots = kernel_run
    # Before 6.7 an aggregation ends when the aggregation interval has passed on the coarse (jiffy) clock,
    # not after aggr/sample samples: a tick of 4 ms against 5 ms samples lets one more sample in.
    extra_samples = 1 if version < (6, 7) else 0
    assert snapshots, "no snapshot was traced"
    counts = [len(s.regions) for s in snapshots]
    record_property(
        NOTE, f"{len(counts)} snapshots, {min(counts)}-{max(counts)} regions (bounds {NR_REGIONS.min}-{NR_REGIONS.max})"
    )
    bad = _violations(snapshots, NR_REGIONS, extra_samples)
    assert not bad, f"{len(bad)} violations, first: {'; '.join(bad[:3])}"


def _engine_snapshots(layout: Layout, context: Context, aggregations: int) -> list[Snapshot]:
    """The reference engine on a simulated copy of the workload (same areas, same intervals)."""
    try:
        from kdamon.engine.core import Callbacks, Monitor
        from kdamon.engine.ops.patterns import SyntheticPattern
        from kdamon.engine.ops.synthetic import SyntheticOps, synthetic_context
    except ImportError as err:
        pytest.skip(f"kdamon's reference engine cannot run in this guest: {err}")
    start, end = layout.span
    hot = layout.areas[0][1] - layout.areas[0][0]
    pattern = SyntheticPattern(kind="hotcold", size=end - start, hot_size=hot, base=start)
    sim = synthetic_context(1, intervals=context.intervals, nr_regions=context.nr_regions)
    snapshots: list[Snapshot] = []
    monitor = Monitor(
        sim,
        SyntheticOps([pattern]),
        seed=1,
        callbacks=Callbacks(after_aggregation=lambda m: snapshots.extend(m.snapshots())),
    )
    monitor.run_virtual(context.intervals.aggr_us * aggregations)
    return snapshots


def test_engine_agrees(
    kernel_run: tuple[Context, list[Snapshot]], shared_hot_cold: Workload, record_property: RecordProperty
) -> None:
    """the kernel and the reference engine agree per area on the same workload: hot share, age growth, region count"""
    layout = shared_hot_cold.layout
    context, kernel = kernel_run
    assert len(kernel) >= 8, f"the kernel produced only {len(kernel)} snapshots"
    engine = _engine_snapshots(layout, context, len(kernel))
    bad = _violations(engine, NR_REGIONS)
    assert not bad, f"the engine broke invariants: {'; '.join(bad[:3])}"
    top = context.max_nr_accesses
    k, e = profile(kernel, layout.areas, top), profile(engine, layout.areas, top)
    record_property(
        NOTE,
        f"kernel: {k.describe()}; engine: {e.describe()} ({k.n} of {len(kernel)} aggregations "
        "compared, region counts over the second half; tolerances in kdamon.check.differential)",
    )
    found = differences(k, e)
    assert not found, "; ".join(found)
