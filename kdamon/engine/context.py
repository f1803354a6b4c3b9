"""The running state of one monitoring context (``struct damon_ctx``).

The configuration (:class:`kdamon.model.config.Context`) is frozen; what
changes while monitoring lives here: the current intervals (auto-tuning
changes them), the regions of every target, the sample-count timers and the
schemes' state.  Operations sets receive this object.
"""

from __future__ import annotations

import attrs
import numpy as np
import numpy.typing as npt

from kdamon.engine.clock import Clock
from kdamon.engine.metrics import SystemMetrics
from kdamon.engine.quota import QuotaState
from kdamon.engine.regions import PAGE_SIZE, RegionList
from kdamon.model.config import Context, Intervals, Scheme, Target

__all__ = ["MonitorContext", "SchemeState", "TargetState"]


@attrs.define(eq=False)
class TargetState:
    """One monitoring target and its regions."""

    index: int
    config: Target
    regions: RegionList = attrs.field(factory=RegionList)

    @property
    def pid(self) -> int | None:
        return self.config.pid


@attrs.define(eq=False)
class SchemeState:
    """One DAMOS scheme while it runs: timer, watermark state, quota, stats."""

    index: int
    config: Scheme
    quota: QuotaState
    next_apply_sis: int = 0
    activated: bool = True
    nr_tried: int = 0
    sz_tried: int = 0
    nr_applied: int = 0
    sz_applied: int = 0
    qt_exceeds: int = 0
    nr_snapshots: int = 0

    @classmethod
    def for_scheme(cls, index: int, scheme: Scheme) -> SchemeState:
        return cls(index, scheme, QuotaState.for_quota(scheme.quota))

    def set_next_apply(self, ctx: MonitorContext) -> None:
        """``damos_set_next_apply_sis()``."""
        interval = self.config.apply_interval_us or ctx.intervals.aggr_us
        self.next_apply_sis = ctx.passed_sample_intervals + interval // ctx.sample_us_nonzero


@attrs.define(eq=False)
class MonitorContext:
    """Everything the loop, the schemes and the operations share."""

    config: Context
    clock: Clock
    rng: np.random.Generator
    metrics: SystemMetrics
    intervals: Intervals
    targets: list[TargetState]
    schemes: list[SchemeState]
    aggr_samples: int = 0
    """Sampling intervals per aggregation, kept by interval auto-tuning."""
    passed_sample_intervals: int = 0
    next_aggregation_sis: int = 0
    next_ops_update_sis: int = 0
    next_intervals_tune_sis: int = 0
    last_split_nr_regions: int = 0
    """The count the previous split saw (a static shared by all contexts in the kernel)."""
    min_sample_us: int = 0
    """The shortest sampling interval the engine's own work allows, when longer than the
    wanted one (see :mod:`kdamon.engine.pacing`); interval auto-tuning stays above it."""

    @classmethod
    def create(cls, config: Context, clock: Clock, rng: np.random.Generator, metrics: SystemMetrics) -> MonitorContext:
        targets = [TargetState(i, t) for i, t in enumerate(config.targets)]
        schemes = [SchemeState.for_scheme(i, s) for i, s in enumerate(config.schemes)]
        ctx = cls(config, clock, rng, metrics, config.intervals, targets, schemes)
        ctx.aggr_samples = config.intervals.aggr_us // ctx.sample_us_nonzero
        return ctx

    # -- derived values --------------------------------------------------------

    @property
    def sample_us_nonzero(self) -> int:
        return max(self.intervals.sample_us, 1)

    @property
    def max_nr_accesses(self) -> int:
        """``damon_max_nr_accesses()``: the moving-sum window, at least 1."""
        return max(self.intervals.aggr_us // self.sample_us_nonzero, 1)

    @property
    def min_region(self) -> int:
        """``DAMON_MIN_REGION``; paddr regions are in ``addr_unit`` units (6.18)."""
        if self.config.ops == "paddr":
            return max(PAGE_SIZE // self.config.addr_unit, 1)
        return PAGE_SIZE

    @property
    def nr_regions(self) -> int:
        return sum(len(t.regions) for t in self.targets)

    def region_sz_limit(self) -> int:
        """``damon_region_sz_limit()``: no merge makes a region bigger than this."""
        total = sum(t.regions.total_size() for t in self.targets)
        return max(total // max(self.config.nr_regions.min, 1), self.min_region)

    # -- timers ----------------------------------------------------------------

    def init_timers(self) -> None:
        """``kdamond_init_ctx()``: the sample-count deadlines at start."""
        sample = self.sample_us_nonzero
        self.passed_sample_intervals = 0
        self.next_aggregation_sis = self.intervals.aggr_us // sample
        self.next_ops_update_sis = self.intervals.update_us // sample
        self.next_intervals_tune_sis = self.next_aggregation_sis * self.intervals.goal.aggrs
        for scheme in self.schemes:
            scheme.set_next_apply(self)

    def set_intervals(self, intervals: Intervals) -> None:
        """``damon_set_attrs()`` for new intervals while running.

        Re-bases the timers on the current sample count and rescales the
        regions' counts and ages to the new intervals (§9.13).
        """
        old = self.intervals
        sample = max(intervals.sample_us, 1)
        aggregating = self.passed_sample_intervals < self.next_aggregation_sis
        self.next_aggregation_sis = self.passed_sample_intervals + intervals.aggr_us // sample
        self.next_ops_update_sis = self.passed_sample_intervals + intervals.update_us // sample
        if old.sample_us and old.aggr_us and intervals.sample_us and intervals.aggr_us:
            old_max = max(old.aggr_us // old.sample_us, 1)
            new_max = max(intervals.aggr_us // intervals.sample_us, 1)
            for target in self.targets:
                _rescale(target.regions, old_max, new_max, old.aggr_us, intervals.aggr_us, aggregating)
        self.intervals = intervals
        for scheme in self.schemes:
            scheme.set_next_apply(self)


def _rescale(
    regions: RegionList, old_max: int, new_max: int, old_aggr_us: int, new_aggr_us: int, aggregating: bool
) -> None:
    """``damon_update_monitoring_result()`` for every region of a target."""

    def convert(counts: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        return counts * 10000 // old_max * new_max // 10000

    if aggregating:
        regions.last_nr_accesses = convert(regions.last_nr_accesses)
        regions.nr_accesses_bp = regions.last_nr_accesses * 10000
        regions.nr_accesses = np.zeros_like(regions.nr_accesses)
    else:
        regions.nr_accesses = convert(regions.nr_accesses)
        regions.nr_accesses_bp = regions.nr_accesses * 10000
    regions.age = regions.age * old_aggr_us // new_aggr_us
