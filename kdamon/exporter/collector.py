"""Prometheus metrics of every kdamond and of DAMON's modules, read fresh at each scrape.

Strictly read-only: the collector only reads files through the sysfs
driver's and the module reader's read methods.  It never writes a state
keyword, so it reports the results files as they are:

* ``stats/*`` are copies the kernel refreshes only on ``update_schemes_stats``
  or, from Linux 6.17, every ``refresh_ms`` (exported as
  ``damon_kdamond_refresh_interval_seconds``; 0 means the counters are as
  fresh as their owner last made them);
* ``tried_regions/`` (working set, hot and cold bytes) hold what the
  kdamond's owner last asked for with ``update_schemes_tried_regions``;
  they are exported only while some exist.

Reading ``state`` and ``pid`` takes DAMON's sysfs lock for a moment, as any
reader does.  A kdamond whose files cannot be read (EBUSY for too long,
a configuration kdamon cannot represent) is skipped for that scrape and
counted in ``damon_exporter_read_errors_total``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence

import attrs
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kdamon.errors import FeatureMissingError, KdamonError
from kdamon.kernel.modules import DamonModules
from kdamon.kernel.sysfs import SysfsDriver
from kdamon.model import Context, Kdamond, SchemeStats, TriedRegion

__all__ = ["DamonCollector", "Temperature", "region_temperatures"]

_PERCENTILES = 101  # DAMON_STAT's memory_idle_ms_percentiles: 0th to 100th


@attrs.frozen
class Temperature:
    """What counts as hot and cold in tried regions.

    Hot: accessed in at least ``hot_permil``/1000 of the sampling intervals
    of an aggregation interval.  Cold: not accessed for at least
    ``cold_idle_us`` (age times the aggregation interval).  Working set:
    accessed at all.
    """

    hot_permil: int = 500
    cold_idle_us: int = 1_000_000


def region_temperatures(regions: Iterable[TriedRegion], sample_us: int, aggr_us: int,
                        temperature: Temperature) -> tuple[int, int, int]:
    """``(working_set, hot, cold)`` bytes of ``regions``."""
    max_nr_accesses = max(aggr_us // max(sample_us, 1), 1)
    wss = hot = cold = 0
    for r in regions:
        size = r.end - r.start
        if r.nr_accesses > 0:
            wss += size
            if r.nr_accesses * 1000 >= temperature.hot_permil * max_nr_accesses:
                hot += size
        elif r.age * aggr_us >= temperature.cold_idle_us:
            cold += size
    return wss, hot, cold


class _Families:
    """Metric families created on first use, yielded in creation order."""

    def __init__(self) -> None:
        self._by_name: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}

    def gauge(self, name: str, doc: str, labels: Sequence[str], values: Sequence[str],
              value: float) -> None:
        family = self._by_name.get(name)
        if family is None:
            family = self._by_name[name] = GaugeMetricFamily(name, doc, labels=list(labels))
        family.add_metric(list(values), value)

    def counter(self, name: str, doc: str, labels: Sequence[str], values: Sequence[str],
                value: float) -> None:
        family = self._by_name.get(name)
        if family is None:
            family = self._by_name[name] = CounterMetricFamily(name, doc, labels=list(labels))
        family.add_metric(list(values), value)

    def __iter__(self) -> Iterator[Metric]:
        return iter(self._by_name.values())


_KD = ("kdamond",)
_SCHEME = ("kdamond", "scheme")
_STAT_COUNTERS = (
    ("nr_tried", "damon_scheme_tried_regions", "Regions the scheme tried to apply its action to"),
    ("sz_tried", "damon_scheme_tried_bytes", "Bytes the scheme tried to apply its action to"),
    ("nr_applied", "damon_scheme_applied_regions", "Regions the action was applied to"),
    ("sz_applied", "damon_scheme_applied_bytes", "Bytes the action was applied to"),
    ("qt_exceeds", "damon_scheme_quota_exceeds", "Charge windows that ended with the quota used up"),
    ("sz_ops_filter_passed", "damon_scheme_ops_filter_passed_bytes",
     "Bytes that passed the operations-layer filters (6.14+)"),
    ("nr_snapshots", "damon_scheme_snapshots", "Completed passes over the regions (7.0+)"),
)


class DamonCollector(Collector):
    """A prometheus-client collector reading DAMON's sysfs tree and module parameters."""

    def __init__(self, driver: SysfsDriver, modules: DamonModules,
                 temperature: Temperature = Temperature()) -> None:
        self.driver = driver
        self.modules = modules
        self.temperature = temperature
        self.read_errors = 0
        self._lock = threading.Lock()  # scrapes may run in parallel threads

    def _count_error(self) -> None:
        with self._lock:
            self.read_errors += 1

    def describe(self) -> Iterable[Metric]:
        return ()  # no reads when the collector is registered

    def collect(self) -> Iterable[Metric]:
        out = _Families()
        if self.driver.available():
            try:
                nr = self.driver.nr_kdamonds()
            except KdamonError:
                nr = 0
                self._count_error()
            for index in range(nr):
                try:
                    self._kdamond(out, index)
                except KdamonError:
                    self._count_error()
        try:
            self._modules(out)
        except KdamonError:
            self._count_error()
        out.counter("damon_exporter_read_errors", "Kdamonds or modules a scrape could not read",
                    (), (), self.read_errors)
        return out

    # -- kdamonds ------------------------------------------------------------
    def _kdamond(self, out: _Families, index: int) -> None:
        kd = (str(index),)
        out.gauge("damon_kdamond_running", "1 while the kdamond thread runs", _KD, kd,
                  int(self.driver.state(index) == "on"))
        pid = self.driver.pid(index)
        if pid is not None:
            out.gauge("damon_kdamond_pid", "The kdamond's kernel thread pid", _KD, kd, pid)
        owner = self.driver.claim(index).value
        try:
            config: Kdamond | None = self.driver.read(index)
        except KdamonError:
            self._count_error()
            config = None
        context = config.contexts[0] if config is not None and config.contexts else None
        out.gauge("damon_kdamond_info", "A kdamond directory: who owns it and its operations set",
                  ("kdamond", "owner", "ops"), (*kd, owner, context.ops if context else ""), 1)
        if config is None:
            return
        out.gauge("damon_kdamond_refresh_interval_seconds",
                  "How often the kernel refreshes the stats files itself (0: never; 6.17+)",
                  _KD, kd, config.refresh_ms / 1000)
        if context is not None:
            self._context(out, index, context)

    def _context(self, out: _Families, index: int, context: Context) -> None:
        kd = (str(index),)
        iv = context.intervals
        for name, us, doc in (
            ("damon_sample_interval_seconds", iv.sample_us, "Sampling interval"),
            ("damon_aggregation_interval_seconds", iv.aggr_us, "Aggregation interval"),
            ("damon_ops_update_interval_seconds", iv.update_us, "Operations update interval"),
        ):
            out.gauge(name, doc, _KD, kd, us / 1e6)
        out.gauge("damon_min_regions", "Configured minimum number of regions", _KD, kd,
                  context.nr_regions.min)
        out.gauge("damon_max_regions", "Configured maximum number of regions", _KD, kd,
                  context.nr_regions.max)
        out.gauge("damon_targets", "Monitoring targets", _KD, kd, len(context.targets))
        for t, target in enumerate(context.targets):
            labels = ("kdamond", "target")
            if target.pid is not None:
                out.gauge("damon_target_pid", "A target's process id", labels, (*kd, str(t)), target.pid)
            out.gauge("damon_target_regions", "A target's configured initial regions", labels,
                      (*kd, str(t)), len(target.regions))
        out.gauge("damon_schemes", "DAMOS schemes", _KD, kd, len(context.schemes))
        stats = self.driver.scheme_stats(index)
        for s, scheme in enumerate(context.schemes):
            sk = (*kd, str(s))
            out.gauge("damon_scheme_info", "A scheme and its action", ("kdamond", "scheme", "action"),
                      (*sk, scheme.action), 1)
            if s < len(stats):
                self._stats(out, sk, stats[s])
            self._scheme_results(out, index, s, iv.sample_us, iv.aggr_us)

    def _stats(self, out: _Families, labels: tuple[str, ...], stats: SchemeStats) -> None:
        for field, name, doc in _STAT_COUNTERS:
            value = getattr(stats, field)
            if value is not None:
                out.counter(name, f"{doc} (as last copied to stats/)", _SCHEME, labels, value)

    def _scheme_results(self, out: _Families, index: int, scheme: int, sample_us: int,
                        aggr_us: int) -> None:
        labels = (str(index), str(scheme))
        try:
            quota = self.driver.effective_quota(index, scheme)
        except FeatureMissingError:
            quota = None
        if quota is not None:
            out.gauge("damon_scheme_effective_quota_bytes",
                      "Effective size quota as last copied (6.9+)", _SCHEME, labels, quota)
        try:
            total, regions = self.driver.tried_regions(index, scheme)
        except FeatureMissingError:  # no tried_regions/ before 6.2
            return
        if not regions:
            return
        wss, hot, cold = region_temperatures(regions, sample_us, aggr_us, self.temperature)
        for name, value, doc in (
            ("damon_scheme_last_tried_regions", len(regions), "Regions of the last tried-regions update"),
            ("damon_scheme_last_tried_bytes", total, "Bytes of the last tried-regions update"),
            ("damon_working_set_bytes", wss, "Bytes of the last tried regions accessed at all"),
            ("damon_hot_bytes", hot, "Bytes of the last tried regions that are hot"),
            ("damon_cold_bytes", cold, "Bytes of the last tried regions idle long enough to be cold"),
        ):
            out.gauge(name, doc, _SCHEME, labels, value)

    # -- modules -------------------------------------------------------------
    def _modules(self, out: _Families) -> None:
        for name in self.modules.present():
            status = self.modules.status(name)
            if status is None:
                continue
            labels = (status.name,)
            out.gauge("damon_module_enabled", "1 while a DAMON module (DAMON_STAT, ...) runs",
                      ("module",), labels, int(status.enabled))
            if status.kdamond_pid is not None:
                out.gauge("damon_module_kdamond_pid", "The module's kdamond pid", ("module",),
                          labels, status.kdamond_pid)
            if name == "damon_stat" and status.enabled:
                self._damon_stat(out)

    def _damon_stat(self, out: _Families) -> None:
        params = self.modules.parameters("damon_stat")
        if "estimated_memory_bandwidth" in params:
            out.gauge("damon_stat_estimated_memory_bandwidth_bytes_per_second",
                      "DAMON_STAT's estimate of the memory bandwidth in use", (), (),
                      int(params["estimated_memory_bandwidth"]))
        if "aggr_interval_us" in params:
            out.gauge("damon_stat_aggregation_interval_seconds",
                      "DAMON_STAT's auto-tuned aggregation interval", (), (),
                      int(params["aggr_interval_us"]) / 1e6)
        values = params.get("memory_idle_ms_percentiles", "").split(",")
        if len(values) == _PERCENTILES:
            for percentile, ms in enumerate(values):
                out.gauge("damon_stat_memory_idle_seconds",
                          "DAMON_STAT's per-byte idle time percentiles (negative: time the "
                          "current access level was kept)", ("percentile",), (str(percentile),),
                          int(ms) / 1000)
