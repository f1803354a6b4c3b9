"""Cut ``damon_aggregated`` events into snapshots: the one assembler of every trace reader.

The kernel emits, at each aggregation, one event per region of each target,
in address order, each carrying the target's ``nr_regions``.  A snapshot is
``nr_regions`` consecutive events of one (kdamond, target).  Events can be
lost (a ring buffer that overflowed, a file cut short): a run of events then
ends early, which shows as ``nr_regions`` changing or the addresses starting
over (a region that starts below the end of the one before it begins the
next aggregation).  Such a cut-short run is dropped and counted in
``incomplete`` (``keep_incomplete=True`` keeps it as a smaller snapshot, as
the peer's record readers do); a run still waiting for events when the input
ends is carried to the next ``feed``, and dropped by ``finish``.

Work is per snapshot, not per event: columns are cut with numpy.

:class:`RecordAssembler` adds the other events a trace session reads
(``damos_before_apply``, ``damon_monitor_intervals_tune``) and yields every
record in time order.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import attrs
import numpy as np

from kdamon.model import IntervalsTune, RegionState, SchemeApply
from kdamon.model.snapshot import RegionArray, Snapshot
from kdamon.trace.events import BEFORE_APPLY, INTERVALS_TUNE
from kdamon.trace.lines import AggregatedLines, U64Array

__all__ = ["RawEvent", "Record", "RecordAssembler", "SnapshotAssembler"]

RawEvent = tuple[int, str, tuple[int, ...]]
"""``(time_ns, event_name, (common_pid, *EventSpec.fields))``: one decoded event other than damon_aggregated."""

Record = Snapshot | SchemeApply | IntervalsTune


@attrs.define
class _Partial:
    """A snapshot whose events have not all arrived yet."""

    time_ns: int
    nr_regions: int
    pieces: list[RegionArray]
    count: int
    last_end: int


class SnapshotAssembler:
    """Turns ``AggregatedLines`` into snapshots, per (kdamond, target).

    ``sample_us``/``aggr_us`` are stamped on every snapshot (0: unknown);
    ``set_intervals`` changes them for the snapshots that follow.  A
    snapshot's time is that of its first event.
    """

    def __init__(self, *, sample_us: int = 0, aggr_us: int = 0, keep_incomplete: bool = False) -> None:
        self.sample_us = sample_us
        self.aggr_us = aggr_us
        self.keep_incomplete = keep_incomplete
        self.incomplete = 0
        self._partials: dict[tuple[int, int], _Partial] = {}

    def set_intervals(self, sample_us: int, aggr_us: int) -> None:
        self.sample_us, self.aggr_us = sample_us, aggr_us

    def feed(self, lines: AggregatedLines) -> list[Snapshot]:
        """The snapshots these events complete, in time order."""
        count = lines.size
        if count == 0:
            return []
        kdamond, target = lines.kdamond, lines.target
        if (kdamond == kdamond[0]).all() and (target == target[0]).all():
            return self._segment((int(kdamond[0]), int(target[0])), lines.time_ns, lines.nr_regions, lines.regions)
        order = np.lexsort((target, kdamond))  # stable: each key keeps its arrival order
        sorted_kd, sorted_target = kdamond[order], target[order]
        change = np.flatnonzero((sorted_kd[1:] != sorted_kd[:-1]) | (sorted_target[1:] != sorted_target[:-1])) + 1
        done: list[Snapshot] = []
        for begin, end in itertools.pairwise([0, *change.tolist(), count]):
            index = order[begin:end]
            key = (int(sorted_kd[begin]), int(sorted_target[begin]))
            done.extend(self._segment(key, lines.time_ns[index], lines.nr_regions[index], lines.regions[index]))
        done.sort(key=lambda snapshot: snapshot.time_ns)
        return done

    def finish(self) -> int:
        """Drop the snapshots still waiting for events; how many there were."""
        left = len(self._partials)
        self.incomplete += left
        self._partials.clear()
        return left

    # -- one (kdamond, target) --------------------------------------------------
    def _snapshot(self, key: tuple[int, int], time_ns: int, regions: RegionArray) -> Snapshot:
        return Snapshot(time_ns, key[0], 0, key[1], regions, self.sample_us, self.aggr_us)

    def _cut_short(self, key: tuple[int, int], time_ns: int, regions: RegionArray, done: list[Snapshot]) -> None:
        self.incomplete += 1
        if self.keep_incomplete:
            done.append(self._snapshot(key, time_ns, regions))

    def _segment(
        self, key: tuple[int, int], times: U64Array, nr_regions: U64Array, regions: RegionArray
    ) -> list[Snapshot]:
        done: list[Snapshot] = []
        count = nr_regions.size
        starts, ends = regions["start"], regions["end"]
        pos = self._continue(key, nr_regions, regions, done)
        if pos == count:
            return done
        # A run breaks where nr_regions changes or the addresses start over.
        breaks = np.flatnonzero((nr_regions[pos + 1 :] != nr_regions[pos:-1]) | (starts[pos + 1 :] < ends[pos:-1]))
        bounds = [pos, *(breaks + pos + 1).tolist(), count]
        for begin, end in itertools.pairwise(bounds):
            size = int(nr_regions[begin])
            if size == 0:
                continue  # lines that claim no regions belong to no snapshot
            while end - begin >= size:
                done.append(self._snapshot(key, int(times[begin]), regions[begin : begin + size]))
                begin += size
            if begin == end:
                continue
            if end == count:  # the rest may come with the next feed
                self._partials[key] = _Partial(
                    int(times[begin]), size, [regions[begin:end]], end - begin, int(ends[end - 1])
                )
            else:
                self._cut_short(key, int(times[begin]), regions[begin:end], done)
        return done

    def _continue(self, key: tuple[int, int], nr_regions: U64Array, regions: RegionArray, done: list[Snapshot]) -> int:
        """Complete the key's partial snapshot from the first events; how many events it took."""
        partial = self._partials.pop(key, None)
        if partial is None:
            return 0
        take = min(partial.nr_regions - partial.count, nr_regions.size)
        starts, ends = regions["start"][:take], regions["end"][:take]
        previous_ends = np.concatenate(([partial.last_end], ends[:-1])).astype(np.uint64)
        fits = (nr_regions[:take] == partial.nr_regions) & (starts >= previous_ends)
        taken = take if fits.all() else int(np.argmin(fits))
        if taken:
            partial.pieces.append(regions[:taken])
            partial.count += taken
            partial.last_end = int(ends[taken - 1])
        if partial.count == partial.nr_regions:
            done.append(self._snapshot(key, partial.time_ns, np.concatenate(partial.pieces)))
        elif taken < take:
            self._cut_short(key, partial.time_ns, np.concatenate(partial.pieces), done)
        else:
            self._partials[key] = partial  # every event so far continued it
        return taken


class RecordAssembler:
    """The records of a trace session: snapshots, scheme applications and interval tunes.

    ``kdamond_idx`` names the kdamond for one traced pid (``pids`` maps
    several pids to their kdamond indices).  Interval tunes change the
    intervals stamped on the snapshots that follow them (the aggregation
    interval keeps its ratio to the sampling interval, as the kernel's
    tuning does).
    """

    def __init__(
        self,
        kdamond_idx: int,
        sample_us: int,
        aggr_us: int,
        pid: int | None = None,
        *,
        pids: dict[int, int] | None = None,
    ) -> None:
        self.pids = dict(pids) if pids is not None else ({} if pid is None else {pid: kdamond_idx})
        self.kdamond_idx = kdamond_idx
        self.snapshots = SnapshotAssembler(sample_us=sample_us, aggr_us=aggr_us)

    @property
    def sample_us(self) -> int:
        return self.snapshots.sample_us

    @property
    def aggr_us(self) -> int:
        return self.snapshots.aggr_us

    @property
    def incomplete(self) -> int:
        return self.snapshots.incomplete

    def _keep_traced(self, lines: AggregatedLines) -> AggregatedLines:
        """The events of traced pids (the kernel's filter should have dropped the others), by kdamond index."""
        if not self.pids:
            return attrs.evolve(lines, kdamond=np.full(lines.size, self.kdamond_idx, dtype=np.uint64))
        known = np.array(sorted(self.pids), dtype=np.uint64)
        indices = np.array([self.pids[p] for p in known.tolist()], dtype=np.uint64)
        where = np.searchsorted(known, lines.kdamond).clip(0, known.size - 1)
        traced = known[where] == lines.kdamond
        if not traced.all():
            lines, where = lines.take(np.flatnonzero(traced)), where[traced]
        return attrs.evolve(lines, kdamond=indices[where])

    def feed(self, lines: AggregatedLines, events: Iterable[RawEvent] = ()) -> list[Record]:
        """Every record of this batch (damon_aggregated ``lines`` and the ``events`` of the other kinds), by time."""
        lines = self._keep_traced(lines)
        out: list[Record] = []
        begin = 0
        for ts, name, vals in events:
            if self.pids and vals[0] not in self.pids:
                continue
            if name == BEFORE_APPLY:
                _, ctx, scheme, tid, start, end, acc, age, _nr = vals
                out.append(SchemeApply(ts, ctx, scheme, tid, RegionState(start, end, acc, age)))
            elif name == INTERVALS_TUNE:
                # the snapshots before the tune keep the old intervals
                split = int(np.searchsorted(lines.time_ns, np.uint64(ts), side="right"))
                out.extend(self.snapshots.feed(lines.take(slice(begin, split))))
                begin = split
                sample_us = vals[1]
                aggr_us = round(sample_us * self.aggr_us / max(self.sample_us, 1))
                self.snapshots.set_intervals(sample_us, aggr_us)
                out.append(IntervalsTune(ts, sample_us, aggr_us, self.pids.get(vals[0], self.kdamond_idx)))
        out.extend(self.snapshots.feed(lines.take(slice(begin, None))))
        out.sort(key=lambda record: record.time_ns)
        return out

    def finish(self) -> None:
        """Count the snapshots still waiting for events as incomplete."""
        self.snapshots.finish()
