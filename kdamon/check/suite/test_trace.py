"""Tracepoint output consistent with sysfs: trace events and tried regions show the same regions."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kdamon.check.emit import NOTE
from kdamon.check.harness import Observation, apply_passes, calibrate, observe
from kdamon.kernel.sysfs import SysfsDriver
from kdamon.model import (
    Context,
    Kdamond,
    Region,
    Scheme,
    Target,
    TriedRegion,
)
from kdamon.testing.workloads import Workload

pytestmark = pytest.mark.usefixtures("trace_keepalive")  # see conftest.py
Version = tuple[int, int]
RecordProperty = Callable[[str, object], None]


@pytest.fixture(scope="module")
def traced(
    raw_driver: SysfsDriver, shared_hot_cold: Workload, version: Version
) -> tuple[Observation, list[TriedRegion]]:
    """A traced kdamond with one all-matching stat scheme, and its tried regions taken meanwhile."""
    if version < (6, 2):
        pytest.skip("tried_regions/ needs Linux 6.2+")
    driver = raw_driver
    layout = shared_hot_cold.layout
    cal = calibrate(layout)
    context = Context(
        intervals=cal.intervals, targets=(Target(pid=layout.pid, regions=(Region(*layout.span),)),), schemes=(Scheme(),)
    )
    tried: list[TriedRegion] = []

    def collect(index: int) -> None:
        for _ in range(4):  # up to 6.13 the kernel gives up after two apply intervals of wall time
            driver.update_tried_regions(index)
            tried.extend(driver.tried_regions(index, 0)[1])
            if tried:
                return

    seen = observe(driver, Kdamond(contexts=(context,)), aggregations=10, at_aggregation=3, action=collect)
    return seen, tried


def test_aggregated_matches_tried_regions(
    traced: tuple[Observation, list[TriedRegion]], record_property: RecordProperty
) -> None:
    """the tried regions of an all-matching scheme are the regions of one damon_aggregated snapshot"""
    seen, tried = traced
    assert tried, "update_schemes_tried_regions produced no tried region"
    bounds = [(t.start, t.end) for t in tried]
    same = [s for s in seen.snapshots if [(r.start, r.end) for r in s.states()] == bounds]
    record_property(
        NOTE,
        f"{len(tried)} tried regions; {len(same)} of {len(seen.snapshots)} snapshots have "
        f"exactly their boundaries; {seen.lost_events} trace events lost",
    )
    assert same, f"no damon_aggregated snapshot has the boundaries of the {len(tried)} tried regions"


def test_before_apply_matches_tried_regions(
    traced: tuple[Observation, list[TriedRegion]],
    need: Callable[[Version, str], None],
    record_property: RecordProperty,
) -> None:
    """the tried regions are exactly the regions of one pass of damos_before_apply events"""
    need((6, 7), "the damos_before_apply trace event")
    seen, tried = traced
    assert tried, "update_schemes_tried_regions produced no tried region"
    bounds = [(t.start, t.end) for t in tried]
    passes = apply_passes(seen.applies)
    record_property(NOTE, f"{len(seen.applies)} damos_before_apply events in {len(passes)} passes")
    assert passes, "no damos_before_apply event was traced"
    assert bounds in passes, f"no pass of damos_before_apply events has the {len(tried)} tried regions' boundaries"
