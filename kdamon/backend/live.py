"""Watch what a running kdamond sees, without disturbing it.

Any kdamond ``kdamon status`` lists can be watched: kdamon's own, other
tools' sysfs or debugfs kdamonds, and the kdamonds of DAMON_STAT,
DAMON_RECLAIM and DAMON_LRU_SORT.  Kernel kdamonds are watched through the
``damon:damon_aggregated`` tracepoint in a private tracefs instance filtered
on the kdamond's pid: nothing under DAMON's sysfs, debugfs or module
parameters is written (the configuration is only read, for the intervals and
the targets).  Engine kdamonds publish their last aggregation's snapshots in
their state directory (``latest.kdr``), which is polled.

A :class:`Frame` is one aggregation: the snapshot of every target.  A
temporary kdamond (:class:`StreamWatch`) may take new targets while it runs
(``kdamon record --include-children``): a frame names those added since the
frame before, and later frames wait for their snapshots too.  When the
kdamond auto-tunes its intervals (DAMON_STAT, an intervals goal), the
intervals stamped on snapshots come from the ``damon_monitor_intervals_tune``
events, or, until one is seen, from the spacing of the aggregations; the
first frame, whose spacing is unknown, is then not yielded.
"""

from __future__ import annotations

import abc
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs

from kdamon.backend.host import Host
from kdamon.backend.types import KdamondId, KdamondStatus, Owner, StreamRecord, TargetAdded, WantedPids
from kdamon.errors import FeatureMissingError, KdamonError
from kdamon.model import IntervalsTune, Kdamond, SchemeApply
from kdamon.model.snapshot import Snapshot

__all__ = [
    "LATEST_FILE",
    "EngineWatch",
    "Frame",
    "Framer",
    "TraceWatch",
    "Watch",
    "Watched",
    "find_watched",
    "open_watch",
    "publish_latest",
    "watchable",
]

LATEST_FILE = "latest.kdr"
"""The file in an engine kdamond's directory that holds its last aggregation's snapshots."""

# DAMON_STAT's context (mm/damon/stat.c): 5 ms sampling, 100 ms aggregation,
# auto-tuned for 4% of accesses observed, the ratio kept; 7.x shows the current
# aggregation interval in its aggr_interval_us parameter.
_DAMON_STAT_SAMPLE_US, _DAMON_STAT_RATIO = 5_000, 20


@attrs.frozen
class Watched:
    """A running kdamond as the live view knows it."""

    id: KdamondId
    owner: Owner
    pid: int
    ops: str
    sample_us: int
    aggr_us: int
    tuned: bool  # the kernel auto-tunes the intervals: the configured ones are only a start
    targets: tuple[str, ...]  # each target described for a title ("pid 1234", "physical memory")

    def title(self, target_idx: int) -> str:
        what = self.targets[target_idx] if target_idx < len(self.targets) else f"target {target_idx}"
        whose = "" if self.owner == "kdamon" else f", {self.owner}"
        return f"{self.id} ({self.ops}{whose}) {what}"


def _targets(kdamond: Kdamond | None) -> tuple[str, tuple[str, ...], int, int, bool]:
    if kdamond is None or not kdamond.contexts:
        return "?", (), 0, 0, False
    context = kdamond.contexts[0]
    described = tuple(f"pid {t.pid}" if t.pid is not None else "physical memory" for t in context.targets)
    iv = context.intervals
    return context.ops, described, iv.sample_us, iv.aggr_us, iv.goal.aggrs > 0


def _module_intervals(host: Host, name: str) -> tuple[int, int, bool]:
    params = host.modules.parameters(name)
    if name == "damon_stat":
        aggr_us = int(params.get("aggr_interval_us", "0") or 0)
        if aggr_us <= 0:
            aggr_us = _DAMON_STAT_SAMPLE_US * _DAMON_STAT_RATIO
        return aggr_us // _DAMON_STAT_RATIO, aggr_us, True
    tuned = params.get("autotune_monitoring_intervals", "N").strip().upper() in ("Y", "1")
    return int(params.get("sample_interval", "5000")), int(params.get("aggr_interval", "100000")), tuned


def _watched(host: Host, status: KdamondStatus) -> Watched | None:
    if not status.running or status.pid is None:
        return None
    if status.id.backend == "module":
        sample_us, aggr_us, tuned = _module_intervals(host, status.id.key)
        return Watched(status.id, status.owner, status.pid, "paddr", sample_us, aggr_us, tuned, ("physical memory",))
    ops, targets, sample_us, aggr_us, tuned = _targets(status.kdamond)
    return Watched(status.id, status.owner, status.pid, ops, sample_us, aggr_us, tuned, targets)


def watchable(host: Host) -> list[Watched]:
    """Every running kdamond of this machine that can be watched (reads only)."""
    from kdamon.backend.control import collect_status

    return [w for s in collect_status(host) if (w := _watched(host, s)) is not None]


@attrs.frozen
class Frame:
    """One aggregation of a kdamond: each target's snapshot, and the scheme applications,
    interval tunes and targets added since the frame before."""

    time_ns: int
    snapshots: tuple[Snapshot, ...]
    applies: tuple[SchemeApply, ...] = ()
    tunes: tuple[IntervalsTune, ...] = ()
    added: tuple[TargetAdded, ...] = ()


class Watch(abc.ABC):
    """Frames of one watched kdamond (a context manager)."""

    def __init__(self, watched: Watched) -> None:
        self.watched = watched

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:  # noqa: B027  (a watch that holds nothing has nothing to release)
        """Release what the watch holds (its tracefs instance)."""

    @abc.abstractmethod
    def frames(self, until: Callable[[], bool]) -> Iterator[Frame]:
        """Each aggregation's frame until ``until()`` is true or the kdamond stops."""


class Framer:
    """Groups a stream of records into per-aggregation frames and fixes tuned intervals."""

    def __init__(self, watched: Watched) -> None:
        self.expected = max(len(watched.targets), 1)
        self.ratio = max(round(watched.aggr_us / max(watched.sample_us, 1)), 1)
        self.estimate = watched.tuned  # until a tune event says the intervals
        self._current: dict[int, Snapshot] = {}
        self._applies: list[SchemeApply] = []
        self._tunes: list[IntervalsTune] = []
        self._added: list[TargetAdded] = []
        self._last_time: int | None = None

    def feed(self, record: StreamRecord) -> Frame | None:
        """The frame a record completes (or the one it closes), if any."""
        if isinstance(record, SchemeApply):
            self._applies.append(record)
            return None
        if isinstance(record, TargetAdded):
            self.expected = max(self.expected, record.index + 1)
            self._added.append(record)
            return None
        if isinstance(record, IntervalsTune):
            self.estimate = False
            self._tunes.append(record)
            return None
        return self.add(record)

    def add(self, snapshot: Snapshot) -> Frame | None:
        """The frame ``snapshot`` completes (or the one it closes), if any."""
        done = None
        if snapshot.target_idx in self._current:
            done = self._close()
        self._current[snapshot.target_idx] = snapshot
        if len(self._current) >= self.expected:
            done = done or self._close()
        return done

    def flush(self) -> Frame | None:
        """The frame still waiting for targets, at the end of the stream."""
        return self._close() if self._current else None

    def _close(self) -> Frame | None:
        snapshots = tuple(sorted(self._current.values(), key=lambda s: s.target_idx))
        applies, tunes = tuple(self._applies), tuple(self._tunes)
        self._current, self._applies, self._tunes = {}, [], []
        time_ns = snapshots[0].time_ns
        previous, self._last_time = self._last_time, time_ns
        if self.estimate:
            if previous is None or time_ns <= previous:
                return None  # the aggregation interval is not known yet (added targets wait for the next)
            sample_us = max((time_ns - previous) // 1000 // self.ratio, 1)
            aggr_us = sample_us * self.ratio
            snapshots = tuple(attrs.evolve(s, sample_us=sample_us, aggr_us=aggr_us) for s in snapshots)
        added, self._added = tuple(self._added), []
        return Frame(time_ns, snapshots, applies, tunes, added)


def _frames_of(records: Iterator[StreamRecord], framer: Framer, warmup: int = 0) -> Iterator[Frame]:
    """The frames of a record stream, the first ``warmup`` ones left out (the targets
    they added are told by the first frame yielded)."""
    seen = 0
    added: tuple[TargetAdded, ...] = ()
    for record in records:
        frame = framer.feed(record)
        if frame is not None:
            seen += 1
            if seen > warmup:
                yield attrs.evolve(frame, added=added + frame.added) if added else frame
                added = ()
            else:
                added += frame.added
    last = framer.flush()
    if last is not None and seen >= warmup:
        yield attrs.evolve(last, added=added + last.added) if added else last


class TraceWatch(Watch):
    """A kernel kdamond, through its ``damon_aggregated`` events."""

    def __init__(
        self, host: Host, watched: Watched, *, buffer_size_kb: int = 8192, poll_s: float | None = None
    ) -> None:
        from kdamon.kernel.tracefs import TraceSession

        super().__init__(watched)
        root = host.tracefs_root()
        if root is None:
            raise FeatureMissingError(
                "watching a kernel kdamond reads DAMON's trace events, and no tracefs is "
                "mounted: mount it (mount -t tracefs nodev /sys/kernel/tracing)"
            )
        if poll_s is None:  # a view at most a quarter of an aggregation late (and polled at least every 50 ms)
            poll_s = min(0.05, watched.aggr_us / 4e6) if watched.aggr_us else 0.05
        self.session = TraceSession(
            watched.pid,
            kdamond_idx=watched.id.index if watched.id.key.isdigit() else 0,
            sample_us=watched.sample_us,
            aggr_us=watched.aggr_us,
            root=root,
            io=host.io,
            poll_s=poll_s,
            buffer_size_kb=buffer_size_kb,
        )
        self.session.open()

    def close(self) -> None:
        self.session.close()

    def frames(self, until: Callable[[], bool]) -> Iterator[Frame]:
        alive = _alive(self.watched.pid)
        yield from _frames_of(self.session.records(lambda: until() or not alive()), Framer(self.watched))

    @property
    def lost(self) -> int:
        """Snapshots dropped because the ring buffer lost some of their events."""
        return self.session.incomplete_snapshots


class EngineWatch(Watch):
    """An engine kdamond, through the snapshots its daemon publishes after each aggregation."""

    def __init__(self, host: Host, watched: Watched, poll_s: float = 0.02) -> None:
        super().__init__(watched)
        self.path = host.engine_dir / watched.id.key / LATEST_FILE
        self._poll_s = poll_s

    def _read(self) -> tuple[Snapshot, ...]:
        from kdamon.records.reader import read_records

        try:
            return tuple(read_records(self.path))
        except FileNotFoundError:
            return ()

    def frames(self, until: Callable[[], bool]) -> Iterator[Frame]:
        alive = _alive(self.watched.pid)
        seen = max((s.time_ns for s in self._read()), default=-1)  # what was there before: not a new aggregation
        while not until() and alive():
            snapshots = self._read()
            if snapshots and snapshots[0].time_ns > seen:
                seen = snapshots[0].time_ns
                yield Frame(seen, snapshots)
            else:
                time.sleep(self._poll_s)


def _alive(pid: int) -> Callable[[], bool]:
    proc = Path(f"/proc/{pid}")
    return proc.exists


def open_watch(host: Host, watched: Watched, *, buffer_size_kb: int = 8192, poll_s: float | None = None) -> Watch:
    """The watch of a kdamond (enter it, or close it when done).

    For a kernel kdamond, ``buffer_size_kb`` is the trace ring buffer per CPU
    and ``poll_s`` how often it is read (default: often enough for a view at
    most a quarter of an aggregation late); a watcher that needs no freshness
    (the exporter) saves kernel memory and CPU with less of both.
    """
    if watched.id.backend == "engine":
        return EngineWatch(host, watched, poll_s=poll_s if poll_s is not None else 0.02)
    return TraceWatch(host, watched, buffer_size_kb=buffer_size_kb, poll_s=poll_s)


def find_watched(host: Host, kid: KdamondId) -> Watched:
    """The running kdamond ``kid``; a clear error when it does not run or does not exist."""
    everything = watchable(host)
    for one in everything:
        if one.id == kid:
            return one
    running = ", ".join(str(w.id) for w in everything) or "none"
    raise KdamonError(f"{kid} is not a running kdamond (running: {running}); `kdamon status` lists every kdamond")


def publish_latest(directory: Path, snapshots: tuple[Snapshot, ...], ops: str) -> None:
    """Replace ``directory/latest.kdr`` with ``snapshots`` (the engine daemon, after each aggregation)."""
    from kdamon.records.types import RecordMeta
    from kdamon.records.writer import RecordWriter

    path = directory / LATEST_FILE
    tmp = directory / f".{LATEST_FILE}.{os.getpid()}"
    first = snapshots[0] if snapshots else None
    meta = RecordMeta(
        producer="engine", sample_us=first.sample_us if first else 0, aggr_us=first.aggr_us if first else 0, ops=ops
    )
    with RecordWriter(tmp, meta, flush_every=0) as writer:
        for snapshot in snapshots:
            writer.append(snapshot)
    os.replace(tmp, path)


class StreamWatch(Watch):
    """A temporary kdamond of kdamon's own, started for the watch and removed when it ends.

    The backend is chosen as ``kdamon start`` chooses it (``reason`` says
    which and why); ``warmup`` aggregations pass before frames are yielded, so
    that the regions have adapted.  ``targets``, polled while the kdamond
    runs, names the processes it should monitor: new ones are appended as
    targets (see :meth:`Backend.stream <kdamon.backend.types.Backend.stream>`),
    and ``watched.targets`` grows with them.
    """

    def __init__(
        self,
        host: Host,
        kdamond: Kdamond,
        prefer: str = "auto",
        *,
        warmup: int = 0,
        engine_stat_only: bool = False,
        targets: WantedPids | None = None,
    ) -> None:
        from kdamon.backend.choose import choose_backend
        from kdamon.backend.types import MonitorRequest

        request = MonitorRequest(kdamond, stream=True, engine_stat_only=engine_stat_only)
        backend, self.reason = choose_backend(request, prefer, host=host)
        self.backend = backend
        self.kdamond = kdamond
        self.warmup = warmup
        self.targets = targets
        ops, described, sample_us, aggr_us, tuned = _targets(kdamond)
        super().__init__(
            Watched(
                KdamondId(backend.name, "temporary"), "kdamon", os.getpid(), ops, sample_us, aggr_us, tuned, described
            )
        )

    def frames(self, until: Callable[[], bool]) -> Iterator[Frame]:
        stream = self.backend.stream(self.kdamond, until, self.targets)
        try:
            for frame in _frames_of(stream, Framer(self.watched), self.warmup):
                if frame.added:
                    self.watched = attrs.evolve(
                        self.watched, targets=self.watched.targets + tuple(f"pid {added.pid}" for added in frame.added)
                    )
                yield frame
        finally:
            stream.close()
