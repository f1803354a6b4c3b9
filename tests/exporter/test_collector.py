"""Metrics from a fake DAMON tree: values match the files, and nothing is written."""

from __future__ import annotations

import shutil
import urllib.request
from pathlib import Path

import pytest

from fleet import Fleet, get, parse, scrape
from kdamon.backend.host import Host, HostPaths
from kdamon.exporter import DamonCollector, serve, tried_summary
from kdamon.model import SchemeStats, TriedRegion
from kdamon.model.access import Temperature


def _files(root: Path) -> dict[str, tuple[float, str]]:
    return {str(p): (p.stat().st_mtime_ns, p.read_text()) for p in root.rglob("*") if p.is_file()}


def test_kdamond_metrics_match_the_tree(fleet: Fleet) -> None:
    driver = fleet.host.sysfs
    samples = scrape(DamonCollector(fleet.host))
    assert get(samples, "damon_kdamond_info", kdamond="sysfs:0", owner="kdamon", ops="paddr") == 1
    assert get(samples, "damon_kdamond_info", kdamond="sysfs:1", owner="foreign", ops="vaddr") == 1
    for index in (0, 1):
        assert get(samples, "damon_kdamond_running", kdamond=f"sysfs:{index}") == 1
        assert get(samples, "damon_kdamond_pid", kdamond=f"sysfs:{index}") == driver.pid(index)
    assert get(samples, "damon_sample_interval_seconds", kdamond="sysfs:0") == 0.01
    assert get(samples, "damon_aggregation_interval_seconds", kdamond="sysfs:0") == 0.2
    assert get(samples, "damon_ops_update_interval_seconds", kdamond="sysfs:0") == 1.0
    assert get(samples, "damon_min_regions", kdamond="sysfs:0") == 10
    assert get(samples, "damon_target_pid", kdamond="sysfs:1", target="0") == 4242
    assert get(samples, "damon_target_regions", kdamond="sysfs:0", target="0") == 1
    assert get(samples, "damon_scheme_info", kdamond="sysfs:0", scheme="0", action="stat") == 1


def test_scheme_stats_and_tried_regions(fleet: Fleet) -> None:
    samples = scrape(DamonCollector(fleet.host, Temperature(hot_permil=500, cold_idle_us=1_000_000)))
    scheme = {"kdamond": "sysfs:0", "scheme": "0"}
    assert get(samples, "damon_scheme_tried_regions_total", **scheme) == 12
    assert get(samples, "damon_scheme_applied_bytes_total", **scheme) == 4096 * 3
    assert get(samples, "damon_scheme_quota_exceeds_total", **scheme) == 1
    assert get(samples, "damon_scheme_last_tried_regions", **scheme) == 4
    assert get(samples, "damon_scheme_last_tried_bytes", **scheme) == 0x1400000
    # max nr_accesses 200000/10000 = 20: hot needs >= 10; cold needs age*0.2s >= 1s
    assert get(samples, "damon_scheme_last_tried_working_set_bytes", **scheme) == 0x300000
    assert get(samples, "damon_scheme_last_tried_hot_bytes", **scheme) == 0x100000
    assert get(samples, "damon_scheme_last_tried_warm_bytes", **scheme) == 0x300000
    assert get(samples, "damon_scheme_last_tried_cold_bytes", **scheme) == 0x1000000
    other = frozenset({"kdamond": "sysfs:1", "scheme": "0"}.items())
    assert ("damon_scheme_last_tried_working_set_bytes", other) not in samples


def test_unknown_counters_give_no_sample(fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    """A counter the kernel does not report (None) is left out, not exported as 0."""
    scheme = {"kdamond": "sysfs:0", "scheme": "0"}
    known = scrape(DamonCollector(fleet.host))
    assert get(known, "damon_scheme_ops_filter_passed_bytes_total", **scheme) == 0
    assert get(known, "damon_scheme_snapshots_total", **scheme) == 0
    monkeypatch.setattr(fleet.host.sysfs, "scheme_stats", lambda _index: [SchemeStats(12, 4096 * 12, None, None, 0)])
    samples = scrape(DamonCollector(fleet.host))
    assert get(samples, "damon_scheme_tried_regions_total", **scheme) == 12
    assert get(samples, "damon_scheme_quota_exceeds_total", **scheme) == 0  # known to be 0
    for name in (
        "damon_scheme_applied_regions_total",
        "damon_scheme_applied_bytes_total",
        "damon_scheme_ops_filter_passed_bytes_total",
        "damon_scheme_snapshots_total",
    ):
        assert (name, frozenset(scheme.items())) not in samples


def test_kernels_without_tried_regions_lose_only_those_metrics(fleet: Fleet) -> None:
    # Linux 6.1: schemes have no tried_regions/ (6.2)
    shutil.rmtree(fleet.fs.base / "kdamonds" / "0" / "contexts" / "0" / "schemes" / "0" / "tried_regions")
    collector = DamonCollector(fleet.host)
    samples = scrape(collector)
    scheme = {"kdamond": "sysfs:0", "scheme": "0"}
    assert collector.read_errors == 0
    assert get(samples, "damon_scheme_tried_regions_total", **scheme) == 12
    assert get(samples, "damon_kdamond_running", kdamond="sysfs:1") == 1
    assert ("damon_scheme_last_tried_regions", frozenset(scheme.items())) not in samples


def test_damon_stat_metrics(fleet: Fleet) -> None:
    samples = scrape(DamonCollector(fleet.host))
    assert get(samples, "damon_module_enabled", module="damon_stat") == 1
    assert get(samples, "damon_module_kdamond_pid", module="damon_stat") == 1
    assert get(samples, "damon_stat_estimated_memory_bandwidth_bytes_per_second") == 123456
    assert get(samples, "damon_stat_aggregation_interval_seconds") == 0.25
    assert get(samples, "damon_stat_memory_idle_seconds", percentile="0") == -0.1
    assert get(samples, "damon_stat_memory_idle_seconds", percentile="50") == 0.4
    assert get(samples, "damon_stat_memory_idle_seconds", percentile="100") == 0.9


def test_a_scrape_writes_nothing(fleet: Fleet) -> None:
    writes, files = list(fleet.fs.writes), _files(fleet.base)
    collector = DamonCollector(fleet.host)
    scrape(collector)
    scrape(collector)
    assert fleet.fs.writes == writes
    assert _files(fleet.base) == files
    assert collector.read_errors == 0


def test_an_unreadable_kdamond_is_counted_and_the_rest_still_reported(fleet: Fleet) -> None:
    (fleet.fs.base / "kdamonds" / "1" / "state").unlink()
    samples = scrape(DamonCollector(fleet.host))
    assert get(samples, "damon_exporter_read_errors_total") == 1
    assert get(samples, "damon_kdamond_running", kdamond="sysfs:0") == 1
    assert ("damon_kdamond_running", frozenset({"kdamond": "sysfs:1"}.items())) not in samples


def test_no_damon_at_all_gives_only_the_error_counter(tmp_path: Path) -> None:
    samples = scrape(DamonCollector(Host(HostPaths.under(tmp_path))))
    assert samples == {("damon_exporter_read_errors_total", frozenset()): 0}


def test_tried_summary() -> None:
    regions = [
        TriedRegion(0, 100, 10, 0),
        TriedRegion(100, 300, 9, 0),
        TriedRegion(300, 600, 0, 5),
        TriedRegion(600, 1000, 0, 4),
    ]
    # 20 samples per aggregation; 50% -> hot from 10; cold after 5 aggregations of 0.2 s
    assert tried_summary(regions, 10_000, 200_000, Temperature(500, 1_000_000)) == (300, 100, 600, 300)


def test_served_over_http(fleet: Fleet) -> None:
    exporter = serve(DamonCollector(fleet.host), "127.0.0.1", 0)
    try:
        with urllib.request.urlopen(exporter.url, timeout=30) as response:
            samples = parse(response.read().decode())
    finally:
        exporter.shutdown()
    assert get(samples, "damon_kdamond_running", kdamond="sysfs:0") == 1
    assert not any(name.startswith(("process_", "python_")) for name, _ in samples)
