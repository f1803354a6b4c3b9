"""The output side of the model: what monitoring and DAMOS produce.

One vocabulary for every producer (sysfs, tracefs, the pure-Python engine,
record files); the snapshot of a target's regions is :mod:`kdamon.model.snapshot`.  These types are created in bulk by the record pipeline, so
they carry no validators: validation belongs to configuration input.
Times are in nanoseconds (``time_ns``), intervals in microseconds, addresses
and sizes in bytes.
"""

from __future__ import annotations

import attrs

__all__ = [
    "IntervalsTune",
    "RegionState",
    "SchemeApply",
    "SchemeStats",
    "TriedRegion",
]


@attrs.frozen(slots=True)
class RegionState:
    """One monitoring region ``[start, end)`` with its access frequency and age."""

    start: int
    end: int
    nr_accesses: int
    age: int

    @property
    def size(self) -> int:
        return self.end - self.start


@attrs.frozen(slots=True)
class SchemeStats:
    """A DAMOS scheme's cumulative counters (``stats/`` in sysfs).

    A counter the kernel does not report is None (unknown, not 0):
    ``nr_applied``, ``sz_applied`` and ``qt_exceeds`` on Linux 5.16's
    debugfs, ``sz_ops_filter_passed`` before 6.14, ``nr_snapshots`` before
    7.0.
    """

    nr_tried: int
    sz_tried: int
    nr_applied: int | None
    sz_applied: int | None
    qt_exceeds: int | None
    sz_ops_filter_passed: int | None = None
    nr_snapshots: int | None = None


@attrs.frozen(slots=True)
class TriedRegion:
    """A region a scheme tried to apply its action to (``tried_regions/``)."""

    start: int
    end: int
    nr_accesses: int
    age: int
    sz_filter_passed: int | None = None


@attrs.frozen(slots=True)
class SchemeApply:
    """A ``damos_before_apply`` event: a scheme is about to act on a region."""

    time_ns: int
    context_idx: int
    scheme_idx: int
    target_idx: int
    region: RegionState


@attrs.frozen(slots=True)
class IntervalsTune:
    """A ``damon_monitor_intervals_tune`` event: the new sampling interval.

    ``aggr_us`` is the aggregation interval that goes with it (the kernel
    keeps the ratio of the two; 0 when unknown), ``kdamond_idx`` the kdamond
    that tuned.
    """

    time_ns: int
    sample_us: int
    aggr_us: int = 0
    kdamond_idx: int = 0
