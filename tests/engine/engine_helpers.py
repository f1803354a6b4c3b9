"""Helpers for the engine tests: a recording operations set and region checks."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from kdamon.engine.context import MonitorContext, TargetState
from kdamon.model.snapshot import Snapshot


class RecordingOps:
    """An operations set that logs every primitive call (target_valid apart)."""

    name = "recording"
    capabilities = "test double: sees nothing"

    def __init__(
        self, log: list[str], *, region_size: int = 1 << 20, valid: Callable[[TargetState], bool] = lambda target: True
    ) -> None:
        self.log = log
        self.region_size = region_size
        self.valid = valid
        self.valid_calls = 0

    def init(self, ctx: MonitorContext) -> None:
        self.log.append("init")
        for target in ctx.targets:
            target.regions.set_ranges([(0, self.region_size)], ctx.min_region)

    def update(self, ctx: MonitorContext) -> None:
        self.log.append("update")

    def prepare_access_checks(self, ctx: MonitorContext) -> None:
        self.log.append("prepare_access_checks")
        for target in ctx.targets:
            target.regions.pick_sampling_addrs(ctx.rng)

    def check_accesses(self, ctx: MonitorContext) -> int:
        self.log.append("check_accesses")
        for target in ctx.targets:
            target.regions.record_accesses(np.ones(len(target.regions), dtype=np.bool_), ctx.max_nr_accesses)
        return max((t.regions.max_nr_accesses() for t in ctx.targets), default=0)

    def reset_aggregated(self, ctx: MonitorContext) -> None:
        self.log.append("reset_aggregated")

    def target_valid(self, target: TargetState) -> bool:
        self.valid_calls += 1
        return self.valid(target)

    def cleanup(self, ctx: MonitorContext) -> None:
        self.log.append("cleanup")


def assert_well_formed(snapshot: Snapshot, ranges: list[tuple[int, int]], min_nr: int, max_nr: int) -> None:
    """Regions sorted, disjoint, page aligned, covering ``ranges`` exactly, count in bounds."""
    regions = list(snapshot.states())
    assert regions, "a target with memory must have regions"
    for region in regions:
        assert region.start < region.end
        assert region.start % 4096 == 0 and region.end % 4096 == 0
    for before, after in zip(regions, regions[1:], strict=False):
        assert before.end <= after.start, f"overlap or disorder at {before} / {after}"
    covered: list[tuple[int, int]] = []
    for region in regions:
        if covered and covered[-1][1] == region.start:
            covered[-1] = (covered[-1][0], region.end)
        else:
            covered.append((region.start, region.end))
    assert covered == ranges
    assert min_nr <= len(regions) <= max_nr
