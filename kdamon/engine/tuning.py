"""Monitoring intervals auto-tuning (6.15+ ``kdamond_tune_intervals()``, §9.14).

Every ``goal.aggrs`` aggregations the observed share of access events is
compared with ``goal.access_bp``; the sampling interval grows when too few
accesses are seen and shrinks (at most halving) when too many, within
``[min_sample_us, max_sample_us]``, and never below the interval the
engine's own work allows (``MonitorContext.min_sample_us``, see
:mod:`kdamon.engine.pacing`).  The aggregation interval keeps its original
number of samples.
"""

from __future__ import annotations

import attrs

from kdamon.engine.context import MonitorContext
from kdamon.engine.quota import feed_loop_next_input

__all__ = ["intervals_adaptation_bp", "intervals_score_bp", "tune_intervals"]


def intervals_score_bp(ctx: MonitorContext) -> int:
    """``damon_get_intervals_score()``: observed / wanted access events, in 1/10000."""
    max_events = 0
    events = 0
    for target in ctx.targets:
        sizes = target.regions.sizes
        max_events += int(sizes.sum()) * ctx.aggr_samples
        events += int((sizes * target.regions.nr_accesses).sum())
    wanted = max_events * ctx.intervals.goal.access_bp // 10000 or 1
    return events * 10000 // wanted


def intervals_adaptation_bp(ctx: MonitorContext) -> int:
    """``damon_get_intervals_adaptation_bp()``: the factor for the sampling interval."""
    adaptation = feed_loop_next_input(100_000_000, intervals_score_bp(ctx)) // 10000
    if adaptation <= 10000:
        adaptation = 5000 + adaptation // 2
    return adaptation


def tune_intervals(ctx: MonitorContext) -> int | None:
    """Apply one tuning step; return the new sampling interval, or None if unchanged."""
    adaptation = intervals_adaptation_bp(ctx)
    if adaptation == 10000:
        return None
    intervals = ctx.intervals
    goal = intervals.goal
    sample_us = min(goal.max_sample_us, intervals.sample_us * adaptation // 10000)
    sample_us = max(goal.min_sample_us, ctx.min_sample_us, sample_us)
    ctx.set_intervals(attrs.evolve(intervals, sample_us=sample_us, aggr_us=sample_us * ctx.aggr_samples))
    return sample_us
