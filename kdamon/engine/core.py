"""The monitoring loop (``kdamond_fn()`` of ``mm/damon/core.c``, Linux 6.12, §9.3).

One :class:`Monitor` runs one context.  Each iteration::

    [watermark gate] prepare_access_checks, after_sampling, sleep(sample),
    check_accesses; if an aggregation is due: merge regions; apply due
    schemes; if an aggregation is due: after_aggregation, [interval tuning],
    reset_aggregated (snapshots are kept), ops.reset_aggregated, split;
    if the update interval passed: ops.update and a new merge size limit.

It starts with ``ops.init``, ``before_start`` and ends with
``before_terminate`` and ``ops.cleanup``.  Targets handed to
:meth:`Monitor.add_targets` join at the top of the next iteration (as a
``commit`` appends them in the kernel), set up by the operations set as the
first ones were.  Timers count sampling intervals,
as 6.7+ does, so virtual and real runs aggregate at the same samples.

Deliberate differences from 6.12:

* a callback returning a true value stops the monitor after the current
  iteration, with every other callback of that iteration still called
  (the kernel breaks out at once);
* ``after_aggregation`` runs after the schemes, so that the snapshots it
  reads are the ``damon_aggregated`` trace's view (the kernel calls it
  before the schemes); ``ops.reset_aggregated`` runs before the split;
* the split's "previous region count" is per monitor, not one static shared
  by every context;
* samples are paced on the clock: the engine's own work is deducted from the
  sleep, and intervals it cannot keep are widened (:mod:`kdamon.engine.pacing`);
  snapshots carry the intervals really used;
* schemes whose action the operations set cannot apply are refused, or
  counted as ``stat`` with ``stat_only=True`` (:mod:`kdamon.engine.actions`).
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterable
from typing import cast

import attrs
import numpy as np

from kdamon.engine.actions import counted_only, stat_only_schemes
from kdamon.engine.clock import Clock, RealClock, VirtualClock
from kdamon.engine.context import MonitorContext, TargetState
from kdamon.engine.metrics import ProcMetrics, SystemMetrics, watermark_wait_us
from kdamon.engine.ops.base import Operations, TargetOps
from kdamon.engine.ops.registry import ops_for_context
from kdamon.engine.pacing import Pace, Pacer
from kdamon.engine.schemes import apply_schemes, check_schemes_supported, scheme_stats
from kdamon.engine.tuning import tune_intervals
from kdamon.errors import EngineError, EngineWarning
from kdamon.model.config import Context, Target
from kdamon.model.results import IntervalsTune, SchemeStats
from kdamon.model.snapshot import Snapshot
from kdamon.model.units import format_duration_us

__all__ = ["Callback", "Callbacks", "Monitor"]

Callback = Callable[["Monitor"], object]
"""A callback gets the monitor; a true return value asks it to stop."""


@attrs.frozen
class Callbacks:
    """Optional hooks into the loop (``struct damon_callback``)."""

    before_start: Callback | None = None
    after_sampling: Callback | None = None
    after_aggregation: Callback | None = None
    before_terminate: Callback | None = None


def _merge_regions(ctx: MonitorContext, threshold: int, sz_limit: int) -> None:
    """``kdamond_merge_regions()``: merge, raising the threshold while over max."""
    max_thres = ctx.intervals.aggr_us // ctx.sample_us_nonzero
    for target in ctx.targets:
        target.regions.update_ages(threshold)
    while True:
        for target in ctx.targets:
            target.regions.merge(threshold, sz_limit)
        if ctx.nr_regions <= ctx.config.nr_regions.max or threshold >= max_thres:
            return
        threshold = max(1, threshold * 2) if threshold < max_thres // 2 else max_thres


def _split_regions(ctx: MonitorContext) -> None:
    """``kdamond_split_regions()``: 2 pieces each, 3 if the count is stuck low."""
    nr_regions = ctx.nr_regions
    max_nr = ctx.config.nr_regions.max
    if nr_regions > max_nr // 2:
        return
    nr_subs = 3 if ctx.last_split_nr_regions == nr_regions and nr_regions < max_nr // 3 else 2
    for target in ctx.targets:
        target.regions.split(nr_subs, ctx.rng, ctx.min_region)
    ctx.last_split_nr_regions = nr_regions


class Monitor:
    """A pure-Python kdamond for one :class:`~kdamon.model.config.Context`.

    Run it in a thread with :meth:`start` / :meth:`stop` / :meth:`join`, or
    synchronously with :meth:`run` (real time) or :meth:`run_virtual`
    (simulated time, no sleeping).  A monitor runs once.

    A scheme whose action the operations set cannot apply raises
    :class:`EngineError`, unless ``stat_only`` is true: it then runs as a
    ``stat`` scheme (tried, never applied; :attr:`counted_only` lists them).
    """

    def __init__(
        self,
        context: Context,
        ops: Operations | None = None,
        *,
        callbacks: Callbacks = Callbacks(),
        clock: Clock | None = None,
        seed: int | None = None,
        metrics: SystemMetrics | None = None,
        kdamond_idx: int = 0,
        context_idx: int = 0,
        stat_only: bool = False,
    ) -> None:
        check_schemes_supported(context.schemes)
        unapplied = counted_only(context, ops)
        if unapplied and not stat_only:
            raise EngineError(
                f"{unapplied.explain()}; change or drop those schemes, or pass "
                "stat_only=True to have them only counted, as stat schemes"
            )
        self.counted_only = unapplied.indexes
        """The schemes that run as ``stat`` schemes: their action cannot be applied."""
        if ops is None:
            ops = ops_for_context(context)
        self.config = context
        self._effective = attrs.evolve(context, schemes=stat_only_schemes(context.schemes, self.counted_only))
        self.ops = ops
        self.callbacks = callbacks
        self.kdamond_idx = kdamond_idx
        self.context_idx = context_idx
        self.paused = context.pause
        self.tunes: list[IntervalsTune] = []
        """``damon_monitor_intervals_tune`` events so far."""
        self._clock = clock
        self._seed = seed
        self._metrics = metrics if metrics is not None else ProcMetrics()
        self._ctx: MonitorContext | None = None
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._done = threading.Event()
        self._in_aggregation = False
        self._last: tuple[Snapshot, ...] = ()
        self._pacer: Pacer | None = None
        self._warned_widening = False
        self._targets_lock = threading.Lock()
        self._queued: list[Target] = []
        self._added: list[tuple[int, Target]] = []

    # -- state ---------------------------------------------------------------

    @property
    def ctx(self) -> MonitorContext:
        """The running context (regions, timers, schemes); exists once started."""
        if self._ctx is None:
            raise EngineError("the monitor has not started: call start(), run() or run_virtual() first")
        return self._ctx

    @property
    def running(self) -> bool:
        return self._ctx is not None and not self._done.is_set()

    def snapshots(self) -> tuple[Snapshot, ...]:
        """Every target's regions now, one :class:`Snapshot` each.

        In ``after_aggregation`` these are the completed aggregation's
        counts, with the intervals it really took; elsewhere the counts of
        the aggregation in progress, with the intervals in use.
        """
        if self._in_aggregation:
            return self._last
        ctx = self.ctx
        return self._snapshots_now(ctx, (ctx.intervals.sample_us, ctx.intervals.aggr_us))

    @property
    def last_snapshots(self) -> tuple[Snapshot, ...]:
        """The snapshots of the most recently completed aggregation (``damon_aggregated``)."""
        return self._last

    def _snapshots_now(self, ctx: MonitorContext, intervals: tuple[int, int]) -> tuple[Snapshot, ...]:
        now = ctx.clock.now_ns()
        return tuple(
            Snapshot(now, self.kdamond_idx, self.context_idx, t.index, t.regions.as_array(), *intervals)
            for t in ctx.targets
        )

    @property
    def pace(self) -> Pace:
        """The intervals in use, the engine's own work per sample, and whether
        the intervals were widened for it (see :mod:`kdamon.engine.pacing`)."""
        if self._ctx is None or self._pacer is None:
            intervals = self.config.intervals
            return Pace(intervals.sample_us, intervals.aggr_us, 0, 0, False)
        intervals = self._ctx.intervals
        return Pace(
            intervals.sample_us,
            intervals.aggr_us,
            self._pacer.busy_us,
            self._pacer.late_us,
            self._pacer.min_sample_us > 0,
        )

    def scheme_stats(self) -> tuple[SchemeStats, ...]:
        """Each scheme's cumulative stats, in configuration order."""
        if self._ctx is None:
            return tuple(SchemeStats(0, 0, 0, 0, 0, nr_snapshots=0) for _ in self.config.schemes)
        return tuple(scheme_stats(s) for s in self._ctx.schemes)

    def set_quota_goal_input(self, scheme_idx: int, goal_idx: int, value: int) -> None:
        """Give a ``user_input`` quota goal its current value (used at the next window)."""
        self.ctx.schemes[scheme_idx].quota.set_user_input(goal_idx, value)

    # -- targets added while running --------------------------------------------

    def add_targets(self, targets: Iterable[Target]) -> None:
        """Monitor ``targets`` too, from the next sampling iteration on (any thread may ask).

        Each is appended (the next target index) and set up as the operations
        set sets up the targets at the start; one it cannot monitor (its
        process is gone) is left out.  :meth:`take_added` says which joined.
        """
        if not isinstance(self.ops, TargetOps):
            raise EngineError(
                f"the {self.ops.name} operations cannot take targets while they run: "
                "start a monitor with every target instead"
            )
        wanted = list(targets)
        for target in wanted:
            target.check_ops(self.config.ops)
        with self._targets_lock:
            self._queued += wanted

    def take_added(self) -> list[tuple[int, Target]]:
        """The targets that joined since the last call, with their index."""
        with self._targets_lock:
            added, self._added = self._added, []
        return added

    def _add_queued(self, ctx: MonitorContext) -> bool:
        """Set up the targets queued by :meth:`add_targets`; True if any joined."""
        with self._targets_lock:
            queued, self._queued = self._queued, []
        joined = False
        for config in queued:
            target = TargetState(len(ctx.targets), config)
            if config.regions:
                target.regions.set_ranges([(r.start, r.end) for r in config.regions], ctx.min_region)
            try:
                cast(TargetOps, self.ops).add_target(ctx, target)  # (add_targets checked the ops)
            except EngineError:
                continue  # its process is gone: it is not monitored
            ctx.targets.append(target)
            joined = True
            with self._targets_lock:
                self._added.append((target.index, config))
        return joined

    # -- running -------------------------------------------------------------

    def start(self) -> None:
        """Run in a background thread on a real clock (unless one was given)."""
        self._begin(self._clock or RealClock())
        self._thread = threading.Thread(target=self._thread_main, name="kdamon-engine", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the loop to stop at the start of its next iteration."""
        self._stop_event.set()
        if self._ctx is not None:
            self._ctx.clock.wake()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread; re-raise its error.  True once the monitor finished."""
        if self._thread is not None:
            self._thread.join(timeout)
        if self._error is not None:
            raise EngineError(f"the engine stopped on an error: {self._error}") from self._error
        return self._done.is_set()

    def run(self, duration_us: int | None = None) -> None:
        """Run in this thread until stopped, or for ``duration_us`` of clock time."""
        clock = self._begin(self._clock or RealClock())
        deadline = None if duration_us is None else clock.now_ns() + duration_us * 1000
        self._main(deadline)

    def run_virtual(self, duration_us: int) -> None:
        """Run ``duration_us`` of simulated time at once, never sleeping."""
        clock = self._clock or VirtualClock()
        if not clock.virtual:
            raise EngineError(
                "run_virtual() needs a virtual clock: construct the Monitor without clock= or with a VirtualClock"
            )
        self._clock = clock
        self.run(duration_us)

    def _begin(self, clock: Clock) -> Clock:
        if self._ctx is not None:
            raise EngineError("a Monitor runs once: create a new one to monitor again")
        self._clock = clock
        self._ctx = MonitorContext.create(self._effective, clock, np.random.default_rng(self._seed), self._metrics)
        return clock

    def _thread_main(self) -> None:
        try:
            self._main(None)
        except BaseException as error:  # handed to join()
            self._error = error

    def _main(self, deadline_ns: int | None) -> None:
        ctx = self.ctx
        ctx.init_timers()
        for target in ctx.targets:
            if target.config.regions:
                target.regions.set_ranges([(r.start, r.end) for r in target.config.regions], ctx.min_region)
        try:
            self.ops.init(ctx)
            self._loop(ctx, deadline_ns)
        finally:
            try:
                if self.callbacks.before_terminate is not None:
                    self.callbacks.before_terminate(self)
            finally:
                self.ops.cleanup(ctx)
                self._done.set()

    def _call(self, callback: Callback | None) -> bool:
        return bool(callback(self)) if callback is not None else False

    def _need_stop(self, ctx: MonitorContext, deadline_ns: int | None) -> bool:
        """``kdamond_need_stop()``, plus the run's time limit."""
        if self._stop_event.is_set():
            return True
        if deadline_ns is not None and ctx.clock.now_ns() >= deadline_ns:
            return True
        return not any(self.ops.target_valid(t) for t in ctx.targets)

    def _wait_activation(self, ctx: MonitorContext, deadline_ns: int | None) -> bool:
        """``kdamond_wait_activation()``: False if the monitor must stop meanwhile."""
        while not self._need_stop(ctx, deadline_ns):
            min_wait: int | None = None
            for scheme in ctx.schemes:
                scheme.activated, wait = watermark_wait_us(scheme.config.watermarks, scheme.activated, self._metrics)
                min_wait = wait if min_wait is None else min(min_wait, wait)
            if not min_wait:
                return True
            ctx.clock.sleep_ns(min_wait * 1000)
        return False

    def _loop(self, ctx: MonitorContext, deadline_ns: int | None) -> None:
        ops = self.ops
        stop = self._call(self.callbacks.before_start)
        sz_limit = ctx.region_sz_limit()
        pacer = self._pacer = Pacer(ctx.clock)
        while not stop:
            if self._queued and self._add_queued(ctx):
                sz_limit = ctx.region_sz_limit()
            if self._need_stop(ctx, deadline_ns):
                break
            waiting = ctx.clock.now_ns()
            if not self._wait_activation(ctx, deadline_ns):
                break
            paused = self.paused
            if paused:
                ctx.clock.sleep_ns(ctx.intervals.sample_us * 1000)
            pacer.not_busy(waiting, waiting=True)
            if paused:
                continue
            next_aggregation_sis = ctx.next_aggregation_sis
            next_ops_update_sis = ctx.next_ops_update_sis
            ops.prepare_access_checks(ctx)
            stop |= self._call(self.callbacks.after_sampling)
            pacer.sleep(ctx.intervals.sample_us)
            ctx.passed_sample_intervals += 1
            max_nr_accesses = ops.check_accesses(ctx)
            aggregating = ctx.passed_sample_intervals >= next_aggregation_sis
            if aggregating:
                _merge_regions(ctx, max_nr_accesses // 10, sz_limit)
            if ctx.schemes:
                applying = ctx.clock.now_ns()
                apply_schemes(ctx, ops)
                pacer.not_busy(applying)
            if aggregating:
                stop |= self._end_aggregation(ctx, pacer, next_aggregation_sis)
            if ctx.passed_sample_intervals >= next_ops_update_sis:
                ctx.next_ops_update_sis = next_ops_update_sis + ctx.intervals.update_us // ctx.sample_us_nonzero
                ops.update(ctx)
                sz_limit = ctx.region_sz_limit()

    def _end_aggregation(self, ctx: MonitorContext, pacer: Pacer, next_aggregation_sis: int) -> bool:
        """Keep snapshots, widen, after_aggregation, tuning, reset, ops hook, split."""
        self._last = self._snapshots_now(ctx, pacer.end_aggregation(ctx))
        self._widen(ctx, pacer)
        self._in_aggregation = True
        try:
            stop = self._call(self.callbacks.after_aggregation)
        finally:
            self._in_aggregation = False
        goal = ctx.intervals.goal
        if goal.aggrs and ctx.passed_sample_intervals >= ctx.next_intervals_tune_sis:
            ctx.next_aggregation_sis = next_aggregation_sis
            ctx.next_intervals_tune_sis += ctx.aggr_samples * goal.aggrs
            sample_us = tune_intervals(ctx)
            if sample_us is not None:
                self.tunes.append(IntervalsTune(ctx.clock.now_ns(), sample_us, ctx.intervals.aggr_us, self.kdamond_idx))
        ctx.next_aggregation_sis = next_aggregation_sis + ctx.intervals.aggr_us // ctx.sample_us_nonzero
        for target in ctx.targets:
            target.regions.reset_aggregated()
        self.ops.reset_aggregated(ctx)
        _split_regions(ctx)
        return stop

    def _widen(self, ctx: MonitorContext, pacer: Pacer) -> None:
        """Widen (or narrow back) the intervals to what the engine's own work allows."""
        sample_us = pacer.widen(ctx)
        if sample_us is None:
            return
        wanted = ctx.intervals
        ctx.set_intervals(attrs.evolve(wanted, sample_us=sample_us, aggr_us=sample_us * ctx.aggr_samples))
        if pacer.min_sample_us and not self._warned_widening:
            self._warned_widening = True
            warnings.warn(
                EngineWarning(
                    f"the engine cannot keep a {format_duration_us(wanted.sample_us, approx=True)} "
                    f"sampling interval: its {self.ops.name} access check and bookkeeping take "
                    f"{format_duration_us(pacer.busy_us, approx=True)} of a sample and its wake-ups "
                    f"come {format_duration_us(pacer.late_us, approx=True)} late, so it samples "
                    f"every {format_duration_us(ctx.intervals.sample_us, approx=True)} and aggregates "
                    f"every {format_duration_us(ctx.intervals.aggr_us, approx=True)} (the same "
                    f"{ctx.aggr_samples} samples per aggregation), and its snapshots say so"
                ),
                stacklevel=2,
            )
