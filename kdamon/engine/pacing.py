"""Keeping the sampling interval on a real machine: pacing, widening, honest stamps.

This has no kernel counterpart.  A kdamond sleeps the sampling interval
between preparing and checking accesses, and its checks take microseconds.
The engine's take milliseconds (reading ``/proc/PID/smaps`` of a Python
process takes tens), and on a loaded machine its wake-ups come late, so
sleeping the whole interval stretched every aggregation, 100 ms ones to
200 ms and more, while the snapshots claimed the configured intervals.  A
:class:`Pacer`:

* deducts the engine's own work since its last wake-up (the access check,
  merging, splitting, callbacks, updates) and the lateness of that wake-up
  from the next sleep, so that a sample takes one sampling interval; but it
  always sleeps at least half the interval, so that the pages are watched
  at least that long in every sample.  DAMOS actions (bounded by quotas,
  and not deducted by the kernel either) and watermark waits are not
  deducted;
* at the end of each aggregation, when the interval could not be kept (the
  work and the lateness of a typical sample, the median, took more than
  :data:`BUDGET` of it, or the aggregation, DAMOS actions aside, took more
  than 10% longer than its interval) for three aggregations in a row (at
  once when by more than twice), widens the intervals so that it can,
  with a quarter to spare,
  keeping the number of samples per aggregation as the kernel's intervals
  auto-tuning does (``nr_accesses`` keeps its range, and the schemes their
  meaning); once half the widened interval has been enough for ten
  aggregations in a row, it narrows them back toward the wanted ones (twice
  as many each time a narrowing had to be widened again: on a loaded
  machine, shorter sleeps wake up later);
* stamps an aggregation that took more than 10% longer than its interval
  anyway (the first one, before a widening) with the intervals it really
  took.

On a virtual clock the engine's work takes no time unless the operations
sleep on the clock, so virtual runs are paced exactly as the kernel paces,
and deterministically.
"""

from __future__ import annotations

import statistics

import attrs

from kdamon.engine.clock import Clock
from kdamon.engine.context import MonitorContext

__all__ = ["BUDGET", "Pace", "Pacer", "round_up_us"]

BUDGET = 0.5
"""The share of each sampling interval the engine's own work and its wake-up lateness may take."""
_HEADROOM = 1.25  # a widened interval is this much longer than the shortest that fits
_WIDEN_AFTER = 3  # aggregations in a row that did not fit the interval
_NARROW_AFTER = 10  # aggregations in a row that half the widened interval would do for, at first
_OVERRUN = 1.1  # an aggregation this much longer than its interval is stamped as measured


def round_up_us(us: int) -> int:
    """``us`` rounded up to two significant digits (``26_310`` -> ``27_000``)."""
    if us < 100:
        return us
    scale = int(10 ** (len(str(us)) - 2))
    return -(-us // scale) * scale


@attrs.frozen
class Pace:
    """How the engine keeps its intervals (:attr:`Monitor.pace <kdamon.engine.core.Monitor.pace>`)."""

    sample_us: int
    """The sampling interval in use now."""
    aggr_us: int
    """The aggregation interval in use now."""
    busy_us: int
    """The engine's own work in a typical sample of the last aggregation (0 before the first)."""
    late_us: int
    """How late its wake-ups came in a typical sample of the last aggregation."""
    widened: bool
    """The intervals were widened: the wanted ones could not be kept."""


class Pacer:
    """Paces one monitor's samples on its clock (see the module's description)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        now = clock.now_ns()
        self._planned_ns = now  # when the last pacing sleep should have ended
        self._woke_ns = now  # when it did
        self._excluded_ns = 0  # time since then that was not the engine's sampling work
        self._aggregation_ns = now  # when the current aggregation began
        self._waited_ns = 0  # watermark waits and pauses in the current aggregation
        self._applied_ns = 0  # DAMOS actions in the current aggregation
        self._work_ns: list[int] = []  # each sample's, in the current aggregation
        self._late_ns: list[int] = []
        self._over = 0  # aggregations in a row that did not fit the interval
        self._calm = 0  # aggregations in a row that half the widened interval would do for
        self._narrow_after = _NARROW_AFTER
        self._narrowed = False  # the last change was a narrowing
        self.busy_us = 0
        """The engine's own work in a typical sample of the last aggregation (the median)."""
        self.late_us = 0
        """The lateness of its wake-ups in a typical sample of the last aggregation."""
        self._period_us = 0  # the mean sampling interval of the last aggregation, DAMOS actions aside
        self.min_sample_us = 0
        """The shortest sampling interval the engine can keep, while it is longer
        than the wanted one; 0 while the wanted intervals are kept."""

    def not_busy(self, since_ns: int, *, waiting: bool = False) -> None:
        """The time since ``since_ns`` was no sampling work: DAMOS actions, or
        (``waiting``) watermark waits and pauses, which belong to no aggregation."""
        spent = self._clock.now_ns() - since_ns
        self._excluded_ns += spent
        if waiting:
            self._waited_ns += spent
        else:
            self._applied_ns += spent

    def sleep(self, sample_us: int) -> None:
        """Sleep what is left of ``sample_us`` after the work and the lateness since the last sleep."""
        now = self._clock.now_ns()
        work = max(now - self._woke_ns - self._excluded_ns, 0)
        late = max(self._woke_ns - self._planned_ns, 0)
        self._work_ns.append(work)
        self._late_ns.append(late)
        interval = sample_us * 1000
        rest = max(interval - work - late, int(interval * (1 - BUDGET)))
        self._clock.sleep_ns(rest)
        self._planned_ns = now + rest
        self._woke_ns = self._clock.now_ns()
        self._excluded_ns = 0

    def end_aggregation(self, ctx: MonitorContext) -> tuple[int, int]:
        """``(sample_us, aggr_us)`` the aggregation that ends now really took; starts the next."""
        now = self._clock.now_ns()
        samples = max(len(self._work_ns), 1)
        duration_us = (now - self._aggregation_ns - self._waited_ns) // 1000
        self._period_us = (duration_us - self._applied_ns // 1000) // samples
        self.busy_us = int(statistics.median(self._work_ns or [0])) // 1000
        self.late_us = int(statistics.median(self._late_ns or [0])) // 1000
        self._aggregation_ns, self._waited_ns, self._applied_ns = now, 0, 0
        self._work_ns, self._late_ns = [], []
        intervals = ctx.intervals
        if duration_us <= intervals.aggr_us * _OVERRUN:
            return intervals.sample_us, intervals.aggr_us
        sample_us = duration_us // samples
        return sample_us, sample_us * samples

    def widen(self, ctx: MonitorContext) -> int | None:
        """The sampling interval the next aggregations need, None to keep the current one.

        Without an intervals goal the wanted interval is the configured one;
        with a goal it is whatever the tuner chose, and the widened interval
        becomes the tuner's lower bound (``ctx.min_sample_us``).
        """
        configured = ctx.config.intervals
        tuned = configured.goal.aggrs > 0
        lowest = configured.goal.min_sample_us if tuned else configured.sample_us
        current = ctx.intervals.sample_us
        shortest = (self.busy_us + self.late_us) / BUDGET
        if self._period_us > current * _OVERRUN:
            shortest = max(shortest, self._period_us)
        floor = self.min_sample_us
        self._over = self._over + 1 if shortest > current else 0
        self._calm = self._calm + 1 if floor and shortest * 2 < floor else 0
        if self._over >= _WIDEN_AFTER or shortest > 2 * current:
            if self._narrowed:
                self._narrow_after *= 2
            floor, self._narrowed = round_up_us(int(shortest * _HEADROOM)), False
            self._over = self._calm = 0
        elif self._calm >= self._narrow_after:
            floor, self._narrowed = round_up_us(int(shortest * _HEADROOM)), True
            self._over = self._calm = 0
        self.min_sample_us = ctx.min_sample_us = floor if floor > lowest else 0
        wanted = max(current if tuned else configured.sample_us, self.min_sample_us)
        return None if wanted == current else wanted
