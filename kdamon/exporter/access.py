"""Hot, warm and cold bytes of every running kdamond, from its latest aggregation.

Each kdamond :func:`kdamon.backend.live.watchable` lists (kdamon's own, other
tools' sysfs and debugfs kdamonds, DAMON_STAT's and the other modules') is
watched in a background thread that keeps its latest :class:`Frame`:
kernel kdamonds through the ``damon:damon_aggregated`` tracepoint in a
private tracefs instance filtered on the kdamond's pid (nothing is written
under DAMON's sysfs, debugfs or module parameters), engine kdamonds through
the aggregation their daemon publishes.  :meth:`AccessWatches.sync`, run at
every scrape, starts a watch for a kdamond that appeared and stops the watch
of one that is gone (its instance is removed); a kdamond restarted, or given
other intervals or targets, gets a new watch.

The metrics summarise each target's latest snapshot with
:func:`kdamon.model.access.summarise`, the definitions ``kdamon show`` uses.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from kdamon.backend.host import Host
from kdamon.backend.live import Frame, TraceWatch, Watched, open_watch, watchable
from kdamon.backend.types import KdamondId
from kdamon.errors import KdamonError
from kdamon.exporter.families import Families
from kdamon.model.access import AGE_EDGES_US, RATE_EDGES_PERMIL, Temperature, summarise

__all__ = ["RETRY_S", "AccessWatches"]

RETRY_S = 60.0
"""How long a watch that failed waits before the next scrape tries it again."""

Report = Callable[[str], None]

# The ring buffer per CPU and how often it is read: 10,000 regions at 100 ms aggregations fill
# about 1.3 MB in 0.25 s; tracefs sessions default to 8 MiB per CPU, too much for an always-on
# service on a machine with many CPUs.
_BUFFER_KB = 2048
_POLL_S = 0.25

_KD = ("kdamond", "owner")
_TARGET = ("kdamond", "owner", "target")


class _Watcher:
    """One watched kdamond: a thread that keeps its latest frame."""

    def __init__(self, host: Host, watched: Watched, failed: Callable[[KdamondId, str], None]) -> None:
        self.watched = watched
        self.key = _key(watched)
        self.latest: tuple[Frame, float] | None = None  # the frame and when it was read (Unix time)
        self.lost = 0
        self.failed_at = -float("inf")  # monotonic time of the failure: never
        self._host = host
        self._failed = failed
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"kdamon watch {watched.id}", daemon=True)
        self.thread.start()

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        try:
            # Scrapes come every few seconds: a small ring buffer read twice a second is fresh enough.
            with open_watch(self._host, self.watched, buffer_size_kb=_BUFFER_KB, poll_s=_POLL_S) as watch:
                for frame in watch.frames(self._stop.is_set):
                    self.latest = (frame, time.time())
                    if isinstance(watch, TraceWatch):
                        self.lost = watch.lost
        except Exception as error:  # noqa: BLE001  # the thread's end: the exporter goes on, the error is reported
            self.failed_at = time.monotonic()
            self._failed(self.watched.id, str(error) or type(error).__name__)


def _key(watched: Watched) -> tuple[object, ...]:
    """What a watch is opened with: when it changes, the watch is replaced."""
    intervals = () if watched.tuned else (watched.sample_us, watched.aggr_us)
    return (watched.pid, watched.ops, watched.targets, intervals)


class AccessWatches:
    """The latest aggregation of every running kdamond, kept by background watches.

    ``trace`` False leaves kernel kdamonds unwatched (no tracefs instance is
    made); engine kdamonds are still read.  ``report`` receives one line for
    each event worth a log entry (a watch started, stopped or failed, tracefs
    missing).  Call :meth:`close` to stop every watch and remove its
    tracefs instance.
    """

    def __init__(
        self,
        host: Host,
        temperature: Temperature = Temperature(),
        *,
        trace: bool = True,
        report: Report = lambda _line: None,
        retry_s: float = RETRY_S,
    ) -> None:
        self.host = host
        self.temperature = temperature
        self.trace = trace
        self.watch_errors = 0
        self._report = report
        self._retry_s = retry_s
        self._watchers: dict[KdamondId, _Watcher] = {}
        self._stopping: list[_Watcher] = []
        self._errors: dict[KdamondId, str] = {}  # the last error of each kdamond's watch
        self._errors_lock = threading.Lock()  # taken by the watch threads
        self._listed: list[Watched] = []
        self._tracefs: bool | None = None
        self._lock = threading.Lock()

    # -- watches ----------------------------------------------------------
    def start(self) -> None:
        """Remove the tracefs instances of kdamon processes that died, then start the first watches."""
        from kdamon.kernel.tracefs import remove_stale_instances

        root = self.host.tracefs_root() if self.trace else None
        if root is not None:
            for name in remove_stale_instances(self.host.io, root):
                self._report(f"removed the tracefs instance {name} of a kdamon process that is gone")
        self.sync()

    def _tracefs_present(self) -> bool:
        present = self.host.tracefs_root() is not None
        if present != self._tracefs:
            self._tracefs = present
            self._report(
                "tracefs found: kernel kdamonds are watched through their damon_aggregated events"
                if present
                else "no tracefs is mounted: no access metrics for kernel kdamonds; mount it "
                "(mount -t tracefs nodev /sys/kernel/tracing) or run with --no-trace"
            )
        return present

    def sync(self) -> None:
        """Watch every running kdamond, and only those (called at every scrape)."""
        with self._lock:
            self._stopping = [w for w in self._stopping if w.running]
            try:
                listed = watchable(self.host)
            except KdamonError as error:
                self._report(f"cannot list the running kdamonds: {error}")
                listed = []
            tracefs = self._tracefs_present() if self.trace else False
            self._listed = listed
            wanted = {w.id: w for w in listed if w.id.backend == "engine" or tracefs}
            for kid in [k for k in self._watchers if k not in wanted]:
                self._retire(kid)
                self._report(f"stopped watching {kid}")
            for kid, watched in wanted.items():
                current = self._watchers.get(kid)
                same = current is not None and current.key == _key(watched)
                if current is not None:
                    if same and (current.running or time.monotonic() - current.failed_at < self._retry_s):
                        continue  # running, or failed a short while ago
                    self._retire(kid)
                if not same:
                    self._report(f"watching {kid} (pid {watched.pid}, {watched.ops})")
                self._watchers[kid] = _Watcher(self.host, watched, self._failed)

    def _failed(self, kid: KdamondId, error: str) -> None:
        """A watch failed: counted, and reported unless it failed the same way last time."""
        with self._errors_lock:
            self.watch_errors += 1
            if self._errors.get(kid) == error:
                return
            self._errors[kid] = error
        self._report(f"cannot watch {kid}: {error}")

    def _retire(self, kid: KdamondId) -> None:
        watcher = self._watchers.pop(kid)
        watcher.stop()
        self._stopping.append(watcher)

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop every watch and wait (at most ``timeout_s``) for their instances to be removed."""
        with self._lock:
            for kid in list(self._watchers):
                self._retire(kid)
            deadline = time.monotonic() + timeout_s
            for watcher in self._stopping:
                watcher.thread.join(max(deadline - time.monotonic(), 0))
            self._stopping = [w for w in self._stopping if w.running]

    # -- metrics ----------------------------------------------------------
    def collect(self, out: Families) -> None:
        """The access metrics of the latest frames, and the watches' health."""
        with self._lock:
            out.gauge(
                "damon_exporter_trace_enabled", "1 unless the exporter runs with --no-trace", (), (), int(self.trace)
            )
            if self.trace:
                out.gauge(
                    "damon_exporter_tracefs_available",
                    "1 when a tracefs is mounted (kernel kdamonds can be watched)",
                    (),
                    (),
                    int(bool(self._tracefs)),
                )
            out.counter("damon_exporter_watch_errors", "Watches of kdamonds that failed", (), (), self.watch_errors)
            for watched in self._listed:
                watcher = self._watchers.get(watched.id)
                up = watcher is not None and watcher.running
                kd = (str(watched.id), watched.owner)
                out.gauge(
                    "damon_access_watch_up",
                    "1 while the exporter watches the running kdamond's "
                    "aggregations (0: no tracefs, --no-trace, or the watch failed)",
                    _KD,
                    kd,
                    int(up),
                )
                if watcher is not None and up and watcher.latest is not None:
                    self._frame(out, kd, watcher)

    def _frame(self, out: Families, kd: tuple[str, str], watcher: _Watcher) -> None:
        assert watcher.latest is not None
        frame, read_at = watcher.latest
        first = frame.snapshots[0]
        out.gauge(
            "damon_access_frame_timestamp_seconds",
            "When the kdamond's latest aggregation was read (Unix time)",
            _KD,
            kd,
            read_at,
        )
        out.gauge(
            "damon_access_sample_interval_seconds",
            "The sampling interval of the latest aggregation (measured when auto-tuned)",
            _KD,
            kd,
            first.sample_us / 1e6,
        )
        out.gauge(
            "damon_access_aggregation_interval_seconds",
            "The aggregation interval of the latest aggregation (measured when auto-tuned)",
            _KD,
            kd,
            first.aggr_us / 1e6,
        )
        if watcher.watched.id.backend != "engine":
            out.counter(
                "damon_access_lost_snapshots",
                "Aggregations dropped because the trace ring buffer "
                "lost some of their events (since the watch started)",
                _KD,
                kd,
                watcher.lost,
            )
        for snapshot in frame.snapshots:
            labels = (*kd, str(snapshot.target_idx))
            summary = summarise(snapshot, self.temperature)
            for name, value, doc in (
                ("damon_regions", snapshot.nr_regions, "Regions of the target's latest aggregation"),
                ("damon_monitored_bytes", summary.total_bytes, "Bytes the target's regions cover"),
                ("damon_hot_bytes", summary.hot_bytes, "Bytes accessed at least at the hot rate"),
                ("damon_warm_bytes", summary.warm_bytes, "Bytes neither hot nor cold"),
                ("damon_cold_bytes", summary.cold_bytes, "Bytes not accessed for the cold idle time"),
            ):
                out.gauge(name, doc, _TARGET, labels, value)
            for low, size in zip(RATE_EDGES_PERMIL, summary.temperature, strict=False):
                out.gauge(
                    "damon_temperature_bytes",
                    "Bytes by access rate: from `rate` percent of the maximum up to the next bin's (0: not accessed)",
                    (*_TARGET, "rate"),
                    (*labels, f"{low / 10:g}"),
                    size,
                )
            for low, size in zip(AGE_EDGES_US, summary.recency, strict=False):
                out.gauge(
                    "damon_recency_bytes",
                    "Bytes by age (time at the current access rate): from `age` seconds up to the next bin's",
                    (*_TARGET, "age"),
                    (*labels, f"{low / 1e6:g}"),
                    size,
                )
            for percentile, idle_us in summary.idle_percentiles_us:
                out.gauge(
                    "damon_idle_seconds",
                    "Per-byte idle time percentiles, as DAMON_STAT defines them (negative: accessed for that long)",
                    (*_TARGET, "percentile"),
                    (*labels, f"{percentile:g}"),
                    idle_us / 1e6,
                )
