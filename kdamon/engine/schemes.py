"""DAMOS: apply schemes to the regions whose access pattern matches (§9.9, §9.10).

Follows ``kdamond_apply_schemes()`` and its helpers in Linux 6.12: each
scheme runs when its own apply interval is due and its watermarks let it,
matches regions on size, ``nr_accesses_bp / 10000`` and age, respects its
quota (splitting the region where the quota runs out and resuming there in
the next window), evaluates core filters (``addr``, ``target``; with the
6.14+ ``allow`` rule) and counts stats like the kernel's.

Deliberate differences: ops-layer filters (``anon``, ``memcg``, ...) are
refused with :class:`EngineError` since no engine operations set can tell
page types apart (the kernel's vaddr silently ignores them); the
``max_nr_snapshots`` limit (7.0) counts one snapshot per completed pass of
a scheme over all targets.
"""

from __future__ import annotations

from kdamon.engine.context import MonitorContext, SchemeState, TargetState
from kdamon.engine.ops.base import Operations, SchemeOps
from kdamon.engine.quota import MAX_SCORE, hot_score, quota_enabled
from kdamon.engine.regions import PAGE_SIZE, align_down
from kdamon.errors import EngineError
from kdamon.model.config import CORE_FILTER_TYPES, AccessPattern, Filter, Scheme
from kdamon.model.results import SchemeStats

__all__ = ["apply_schemes", "check_schemes_supported", "pattern_matches", "scheme_stats"]


def check_schemes_supported(schemes: tuple[Scheme, ...]) -> None:
    """Refuse what the engine cannot do, before monitoring starts."""
    for index, scheme in enumerate(schemes):
        for filter_ in scheme.filters:
            if filter_.type not in CORE_FILTER_TYPES:
                raise EngineError(
                    f"schemes[{index}]: {filter_.type!r} filters look at page types, which the "
                    f"pure-Python engine cannot see; use the kernel driver, or keep to "
                    f"{' and '.join(CORE_FILTER_TYPES)} filters"
                )


def pattern_matches(pattern: AccessPattern, size: int, nr_accesses: int, age: int) -> bool:
    """``__damos_valid_target()`` on one region."""
    return (
        pattern.sz_min <= size <= pattern.sz_max
        and pattern.nr_accesses_min <= nr_accesses <= pattern.nr_accesses_max
        and pattern.age_min <= age <= pattern.age_max
    )


def scheme_stats(scheme: SchemeState) -> SchemeStats:
    """The scheme's counters as the model's result type."""
    return SchemeStats(
        scheme.nr_tried,
        scheme.sz_tried,
        scheme.nr_applied,
        scheme.sz_applied,
        scheme.qt_exceeds,
        sz_ops_filter_passed=None,
        nr_snapshots=scheme.nr_snapshots,
    )


def _score(ctx: MonitorContext, ops: SchemeOps, scheme: Scheme, nr_accesses: int, age: int) -> int:
    kind = ops.score_kind(scheme.action)
    if kind == "max":
        return MAX_SCORE
    hot = hot_score(nr_accesses, age, ctx.max_nr_accesses, ctx.intervals.aggr_us, scheme.quota.weights)
    return hot if kind == "hot" else MAX_SCORE - hot


def _adjust_quota(ctx: MonitorContext, ops: Operations, scheme: SchemeState) -> None:
    """``damos_adjust_quota()``: charge windows, then the minimum score to reach."""
    state = scheme.quota
    if not quota_enabled(scheme.config.quota):
        return
    if state.start_window_if_due(ctx.clock.now_ns(), ctx.metrics, ctx.min_region, PAGE_SIZE):
        scheme.qt_exceeds += 1
    if not isinstance(ops, SchemeOps):
        return
    histogram = [0] * (MAX_SCORE + 1)
    max_score = 0
    pattern = scheme.config.access_pattern
    for target in ctx.targets:
        regions = target.regions
        for size, bp, age in zip(
            regions.sizes.tolist(), regions.nr_accesses_bp.tolist(), regions.age.tolist(), strict=True
        ):
            if not pattern_matches(pattern, size, bp // 10000, age):
                continue
            score = _score(ctx, ops, scheme.config, bp // 10000, age)
            histogram[score] += size
            max_score = max(max_score, score)
    cumulated = 0
    score = max_score
    while True:
        cumulated += histogram[score]
        if cumulated >= state.esz or score == 0:
            break
        score -= 1
    state.min_score = score


def _skip_charged(ctx: MonitorContext, target: TargetState, index: int, scheme: SchemeState) -> int | None:
    """``damos_skip_charged_region()``: None to skip the region, else the index of
    the (possibly split-off) part to try."""
    quota = scheme.quota
    if quota.charge_target_from is None:
        return index
    regions = target.regions
    if target.index != quota.charge_target_from:
        return None
    if index == len(regions) - 1:
        quota.charge_target_from, quota.charge_addr_from = None, 0
        return None
    start, end = int(regions.start[index]), int(regions.end[index])
    addr_from = quota.charge_addr_from
    if addr_from and end <= addr_from:
        return None
    if addr_from and start < addr_from:
        skip = align_down(addr_from - start, ctx.min_region)
        if not skip:
            if end - start <= ctx.min_region:
                return None
            skip = ctx.min_region
        regions.split_at(index, skip)
        index += 1
    quota.charge_target_from, quota.charge_addr_from = None, 0
    return index


def _filter_matches(ctx: MonitorContext, target: TargetState, index: int, filter_: Filter) -> bool:
    """``damos_filter_match()`` for core filters; may split the region at an
    address filter bound (the region at ``index`` is then the left part)."""
    if filter_.type == "target":
        matched = target.index == filter_.target_idx
        return matched == filter_.matching
    regions = target.regions
    lo = align_down(filter_.addr_start, ctx.min_region)
    hi = align_down(filter_.addr_end, ctx.min_region)
    start, end = int(regions.start[index]), int(regions.end[index])
    if lo <= start and end <= hi:
        matched = True
    elif end <= lo or hi <= start:
        matched = False
    elif start < lo:
        regions.split_at(index, lo - start)
        matched = False
    else:
        regions.split_at(index, hi - start)
        matched = True
    return matched == filter_.matching


def _filtered_out(ctx: MonitorContext, target: TargetState, index: int, scheme: Scheme) -> bool:
    """``damos_filter_out()``: the first filter whose condition holds decides;
    without one, reject only if the last filter is an allow-filter."""
    for filter_ in scheme.filters:
        if _filter_matches(ctx, target, index, filter_):
            return not filter_.allow
    return bool(scheme.filters) and scheme.filters[-1].allow


def _apply_one(ctx: MonitorContext, ops: Operations, target: TargetState, index: int, scheme: SchemeState) -> None:
    """``damos_apply_scheme()`` on region ``index`` of ``target``."""
    quota = scheme.quota
    regions = target.regions
    size = int(regions.end[index] - regions.start[index])
    applied = 0
    if isinstance(ops, SchemeOps):
        if quota.esz and quota.charged_sz + size > quota.esz:
            size = align_down(quota.esz - quota.charged_sz, ctx.min_region)
            if not size:
                scheme.nr_tried += 1
                return
            regions.split_at(index, size)
        if _filtered_out(ctx, target, index, scheme.config):
            return
        began = ctx.clock.now_ns()
        applied = ops.apply_scheme(ctx, target, int(regions.start[index]), int(regions.end[index]), scheme.config)
        quota.total_charged_ns += ctx.clock.now_ns() - began
        quota.charged_sz += size
        if quota.esz and quota.charged_sz >= quota.esz:
            quota.charge_target_from = target.index
            quota.charge_addr_from = int(regions.end[index]) + 1
    if scheme.config.action != "stat":
        regions.age[index] = 0
    scheme.nr_tried += 1
    scheme.sz_tried += size
    if applied:
        scheme.nr_applied += 1
    scheme.sz_applied += applied


def _try_region(ctx: MonitorContext, ops: Operations, target: TargetState, index: int, due: list[SchemeState]) -> None:
    """``damon_do_apply_schemes()``: every due scheme on one region."""
    for scheme in due:
        if scheme.quota.exhausted:
            continue
        current = _skip_charged(ctx, target, index, scheme)
        if current is None:
            continue
        index = current
        regions = target.regions
        size = int(regions.end[index] - regions.start[index])
        nr_accesses = int(regions.nr_accesses_bp[index]) // 10000
        age = int(regions.age[index])
        if not pattern_matches(scheme.config.access_pattern, size, nr_accesses, age):
            continue
        if (
            scheme.quota.esz
            and isinstance(ops, SchemeOps)
            and _score(ctx, ops, scheme.config, nr_accesses, age) < scheme.quota.min_score
        ):
            continue
        _apply_one(ctx, ops, target, index, scheme)


def apply_schemes(ctx: MonitorContext, ops: Operations) -> None:
    """``kdamond_apply_schemes()``: run the schemes whose apply interval is due."""
    due = [
        s
        for s in ctx.schemes
        if ctx.passed_sample_intervals >= s.next_apply_sis
        and s.activated
        and not (s.config.max_nr_snapshots and s.nr_snapshots >= s.config.max_nr_snapshots)
    ]
    if not due:
        return
    for scheme in due:
        _adjust_quota(ctx, ops, scheme)
    for target in ctx.targets:
        index = 0
        while index < len(target.regions):
            count_before = len(target.regions)
            _try_region(ctx, ops, target, index, due)
            index += 1 + len(target.regions) - count_before
    for scheme in due:
        scheme.set_next_apply(ctx)
        scheme.nr_snapshots += 1
