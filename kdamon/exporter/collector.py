"""Prometheus metrics of every kdamond and of DAMON's modules, read fresh at each scrape.

Strictly read-only towards DAMON: the collector reads kdamonds through the
sysfs backend (``status_of`` and ``last_results``, what ``kdamon status``
shows) and the module reader's read methods.  It never writes a state
keyword, so it reports the results files as they are:

* ``stats/*`` are copies the kernel refreshes only on ``update_schemes_stats``
  or, from Linux 6.17, every ``refresh_ms`` (exported as
  ``damon_kdamond_refresh_interval_seconds``; 0 means the counters are as
  fresh as their owner last made them);
* ``tried_regions/`` (working set, hot, warm and cold bytes) hold what the
  kdamond's owner last asked for with ``update_schemes_tried_regions``;
  they are exported only while some exist.

What every running kdamond sees now (hot, warm and cold bytes, histograms,
idle-time percentiles) comes from :class:`~kdamon.exporter.access.AccessWatches`,
which reads DAMON's trace events into tracefs instances of its own.

Kdamonds are labelled as ``kdamon status`` names them (``sysfs:0``,
``module:damon_stat``), owners as it shows them (``kdamon``, ``foreign``,
``free``).  Reading ``state`` and ``pid`` takes DAMON's sysfs lock for a
moment, as any reader does.  A kdamond whose files cannot be read (EBUSY for
too long, a configuration kdamon cannot represent) is skipped for that scrape
and counted in ``damon_exporter_read_errors_total``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

import numpy as np
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from kdamon.backend.host import Host
from kdamon.backend.sysfs_backend import SysfsBackend
from kdamon.backend.types import KdamondId
from kdamon.errors import KdamonError
from kdamon.exporter.access import AccessWatches
from kdamon.exporter.families import Families
from kdamon.model import Context, Kdamond, SchemeStats, TriedRegion
from kdamon.model.access import Temperature, summarise
from kdamon.model.snapshot import Snapshot

__all__ = ["DamonCollector", "tried_summary"]

_PERCENTILES = 101  # DAMON_STAT's memory_idle_ms_percentiles: 0th to 100th


def tried_summary(
    regions: Sequence[TriedRegion], sample_us: int, aggr_us: int, temperature: Temperature
) -> tuple[int, int, int, int]:
    """``(working_set, hot, warm, cold)`` bytes of a scheme's tried regions (working set: accessed at all)."""
    snapshot = Snapshot.of_rows(
        0, 0, 0, 0, [(r.start, r.end, r.nr_accesses, r.age) for r in regions], sample_us, aggr_us
    )
    summary = summarise(snapshot, temperature, percentiles=())
    working_set = int(snapshot.sizes[snapshot.regions["nr_accesses"] > 0].astype(np.int64).sum())
    return working_set, summary.hot_bytes, summary.warm_bytes, summary.cold_bytes


_KD = ("kdamond",)
_SCHEME = ("kdamond", "scheme")
_STAT_COUNTERS = (
    ("nr_tried", "damon_scheme_tried_regions", "Regions the scheme tried to apply its action to"),
    ("sz_tried", "damon_scheme_tried_bytes", "Bytes the scheme tried to apply its action to"),
    ("nr_applied", "damon_scheme_applied_regions", "Regions the action was applied to"),
    ("sz_applied", "damon_scheme_applied_bytes", "Bytes the action was applied to"),
    ("qt_exceeds", "damon_scheme_quota_exceeds", "Charge windows that ended with the quota used up"),
    (
        "sz_ops_filter_passed",
        "damon_scheme_ops_filter_passed_bytes",
        "Bytes that passed the operations-layer filters (6.14+)",
    ),
    ("nr_snapshots", "damon_scheme_snapshots", "Completed passes over the regions (7.0+)"),
)


class DamonCollector(Collector):
    """A prometheus-client collector reading DAMON's sysfs tree and module parameters
    and, with ``access``, what every running kdamond sees."""

    def __init__(
        self, host: Host, temperature: Temperature = Temperature(), *, access: AccessWatches | None = None
    ) -> None:
        self.sysfs = SysfsBackend(host)
        self.modules = host.modules
        self.temperature = temperature
        self.access = access
        self.read_errors = 0
        self._lock = threading.Lock()  # scrapes may run in parallel threads

    def _count_error(self) -> None:
        with self._lock:
            self.read_errors += 1

    def describe(self) -> Iterable[Metric]:
        return ()  # no reads when the collector is registered

    def collect(self) -> Iterable[Metric]:
        out = Families()
        try:
            kids = self.sysfs.kdamonds()
        except KdamonError:
            kids = []
            self._count_error()
        for kid in kids:
            try:
                self._kdamond(out, kid)
            except KdamonError:
                self._count_error()
        try:
            self._modules(out)
        except KdamonError:
            self._count_error()
        out.counter(
            "damon_exporter_read_errors", "Kdamonds or modules a scrape could not read", (), (), self.read_errors
        )
        if self.access is not None:
            self.access.sync()
            self.access.collect(out)
        return out

    # -- kdamonds ------------------------------------------------------------
    def _kdamond(self, out: Families, kid: KdamondId) -> None:
        status = self.sysfs.status_of(kid)
        kd = (str(kid),)
        out.gauge("damon_kdamond_running", "1 while the kdamond thread runs", _KD, kd, int(status.running))
        if status.pid is not None:
            out.gauge("damon_kdamond_pid", "The kdamond's kernel thread pid", _KD, kd, status.pid)
        for _ in status.unreadable:
            self._count_error()
        config = status.kdamond
        if config is None and "configuration" not in status.unreadable:
            config = Kdamond()  # not configured
        context = config.contexts[0] if config is not None and config.contexts else None
        out.gauge(
            "damon_kdamond_info",
            "A kdamond directory: who owns it and its operations set",
            ("kdamond", "owner", "ops"),
            (*kd, status.owner, context.ops if context else ""),
            1,
        )
        if config is None:
            return
        out.gauge(
            "damon_kdamond_refresh_interval_seconds",
            "How often the kernel refreshes the stats files itself (0: never; 6.17+)",
            _KD,
            kd,
            config.refresh_ms / 1000,
        )
        if context is not None:
            self._context(out, kid, context, status.stats)

    def _context(self, out: Families, kid: KdamondId, context: Context, stats: tuple[SchemeStats, ...]) -> None:
        kd = (str(kid),)
        iv = context.intervals
        for name, us, doc in (
            ("damon_sample_interval_seconds", iv.sample_us, "Sampling interval"),
            ("damon_aggregation_interval_seconds", iv.aggr_us, "Aggregation interval"),
            ("damon_ops_update_interval_seconds", iv.update_us, "Operations update interval"),
        ):
            out.gauge(name, doc, _KD, kd, us / 1e6)
        out.gauge("damon_min_regions", "Configured minimum number of regions", _KD, kd, context.nr_regions.min)
        out.gauge("damon_max_regions", "Configured maximum number of regions", _KD, kd, context.nr_regions.max)
        out.gauge("damon_targets", "Monitoring targets", _KD, kd, len(context.targets))
        for t, target in enumerate(context.targets):
            labels = ("kdamond", "target")
            if target.pid is not None:
                out.gauge("damon_target_pid", "A target's process id", labels, (*kd, str(t)), target.pid)
            out.gauge(
                "damon_target_regions",
                "A target's configured initial regions",
                labels,
                (*kd, str(t)),
                len(target.regions),
            )
        out.gauge("damon_schemes", "DAMOS schemes", _KD, kd, len(context.schemes))
        for s, scheme in enumerate(context.schemes):
            sk = (*kd, str(s))
            out.gauge(
                "damon_scheme_info", "A scheme and its action", ("kdamond", "scheme", "action"), (*sk, scheme.action), 1
            )
            if s < len(stats):
                self._stats(out, sk, stats[s])
            self._scheme_results(out, kid, s, iv.sample_us, iv.aggr_us)

    def _stats(self, out: Families, labels: tuple[str, ...], stats: SchemeStats) -> None:
        for field, name, doc in _STAT_COUNTERS:
            value = getattr(stats, field)
            if value is not None:
                out.counter(name, f"{doc} (as last copied to stats/)", _SCHEME, labels, value)

    def _scheme_results(self, out: Families, kid: KdamondId, scheme: int, sample_us: int, aggr_us: int) -> None:
        labels = (str(kid), str(scheme))
        results = self.sysfs.last_results(kid, scheme)
        if results.effective_quota is not None:
            out.gauge(
                "damon_scheme_effective_quota_bytes",
                "Effective size quota as last copied (6.9+)",
                _SCHEME,
                labels,
                results.effective_quota,
            )
        if results.tried is None or not results.tried[1]:
            return
        total, regions = results.tried
        wss, hot, warm, cold = tried_summary(regions, sample_us, aggr_us, self.temperature)
        for name, value, doc in (
            ("damon_scheme_last_tried_regions", len(regions), "Regions of the last tried-regions update"),
            ("damon_scheme_last_tried_bytes", total, "Bytes of the last tried-regions update"),
            ("damon_scheme_last_tried_working_set_bytes", wss, "Bytes of the last tried regions accessed at all"),
            ("damon_scheme_last_tried_hot_bytes", hot, "Bytes of the last tried regions that are hot"),
            ("damon_scheme_last_tried_warm_bytes", warm, "Bytes of the last tried regions neither hot nor cold"),
            ("damon_scheme_last_tried_cold_bytes", cold, "Bytes of the last tried regions idle long enough to be cold"),
        ):
            out.gauge(name, doc, _SCHEME, labels, value)

    # -- modules -------------------------------------------------------------
    def _modules(self, out: Families) -> None:
        for name in self.modules.present():
            status = self.modules.status(name)
            if status is None:
                continue
            labels = (status.name,)
            out.gauge(
                "damon_module_enabled",
                "1 while a DAMON module (DAMON_STAT, ...) runs",
                ("module",),
                labels,
                int(status.enabled),
            )
            if status.kdamond_pid is not None:
                out.gauge(
                    "damon_module_kdamond_pid", "The module's kdamond pid", ("module",), labels, status.kdamond_pid
                )
            if name == "damon_stat" and status.enabled:
                self._damon_stat(out)

    def _damon_stat(self, out: Families) -> None:
        params = self.modules.parameters("damon_stat")
        if "estimated_memory_bandwidth" in params:
            out.gauge(
                "damon_stat_estimated_memory_bandwidth_bytes_per_second",
                "DAMON_STAT's estimate of the memory bandwidth in use",
                (),
                (),
                int(params["estimated_memory_bandwidth"]),
            )
        if "aggr_interval_us" in params:
            out.gauge(
                "damon_stat_aggregation_interval_seconds",
                "DAMON_STAT's auto-tuned aggregation interval",
                (),
                (),
                int(params["aggr_interval_us"]) / 1e6,
            )
        values = params.get("memory_idle_ms_percentiles", "").split(",")
        if len(values) == _PERCENTILES:
            for percentile, ms in enumerate(values):
                out.gauge(
                    "damon_stat_memory_idle_seconds",
                    "DAMON_STAT's per-byte idle time percentiles (negative: time the current access level was kept)",
                    ("percentile",),
                    (str(percentile),),
                    int(ms) / 1000,
                )
