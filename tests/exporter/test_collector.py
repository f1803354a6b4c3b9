"""Metrics from a fake DAMON tree: values match the files, and nothing is written."""

from __future__ import annotations

import shutil
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from fake_damon import FakeDamonFs  # tests/kernel, see conftest.py
from kdamon.exporter import DamonCollector, Temperature, region_temperatures, serve
from kdamon.kernel.modules import DamonModules
from kdamon.kernel.ownership import OwnershipRegistry
from kdamon.kernel.sysfs import SysfsDriver
from kdamon.kernel.sysfs_io import SysfsIO
from kdamon.model import (
    AccessPattern,
    Context,
    Intervals,
    Kdamond,
    Region,
    Scheme,
    SchemeStats,
    Target,
    TriedRegion,
)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

PADDR = Kdamond(contexts=(Context(
    ops="paddr",
    intervals=Intervals(sample_us=10_000, aggr_us=200_000, update_us=1_000_000),
    targets=(Target(regions=(Region(0x100000, 0x40000000),)),),
    schemes=(Scheme(action="stat", access_pattern=AccessPattern()),),
),))
VADDR = Kdamond(contexts=(Context(ops="vaddr", targets=(Target(pid=4242),)),))
IDLE_MS = [str(10 * p - 100) for p in range(101)]  # -100 ... 900 ms


def _driver(fake: FakeDamonFs, root: Path, run: Path) -> SysfsDriver:
    io = SysfsIO(fake, sleep=lambda _s: None)
    return SysfsDriver(root / "admin", io=io, owners=OwnershipRegistry(run),
                       modules=DamonModules(root / "module", io=io))


@pytest.fixture
def tree(tmp_path: Path) -> tuple[FakeDamonFs, SysfsDriver]:
    """kdamond 0: kdamon's paddr one with stats and tried regions; 1: someone else's vaddr."""
    fake = FakeDamonFs(tmp_path / "admin", "7.3")
    fake.write(fake.base / "kdamonds" / "nr_kdamonds", b"2")  # both directories, none running
    owner = _driver(fake, tmp_path, tmp_path / "run")
    index = 0
    owner.apply(index, PADDR)
    owner.start(index)
    fake.stats[0] = (12, 4096 * 12, 3, 4096 * 3, 1)
    fake.tried[0] = [(0x100000, 0x200000, 20, 0), (0x200000, 0x400000, 4, 2),
                     (0x400000, 0x1400000, 0, 30), (0x1400000, 0x1500000, 0, 2)]
    owner.update_schemes_stats(index)
    owner.update_tried_regions(index)
    other = _driver(fake, tmp_path, tmp_path / "other-run")
    other.apply(1, VADDR)
    other.start(1)
    params = tmp_path / "module" / "damon_stat" / "parameters"
    params.mkdir(parents=True)
    for name, value in {"enabled": "Y", "kdamond_pid": "77", "estimated_memory_bandwidth": "123456",
                        "aggr_interval_us": "250000",
                        "memory_idle_ms_percentiles": ",".join(IDLE_MS)}.items():
        (params / name).write_text(value + "\n")
    return fake, _driver(fake, tmp_path, tmp_path / "run")


def _scrape(collector: DamonCollector) -> Samples:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return _parse(generate_latest(registry).decode())


def _parse(text: str) -> Samples:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _get(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def _files(root: Path) -> dict[str, tuple[float, str]]:
    return {str(p): (p.stat().st_mtime_ns, p.read_text()) for p in root.rglob("*") if p.is_file()}


def test_kdamond_metrics_match_the_tree(tree: tuple[FakeDamonFs, SysfsDriver], tmp_path: Path) -> None:
    fake, driver = tree
    samples = _scrape(DamonCollector(driver, driver.modules))
    assert _get(samples, "damon_kdamond_info", kdamond="0", owner="owned", ops="paddr") == 1
    assert _get(samples, "damon_kdamond_info", kdamond="1", owner="foreign", ops="vaddr") == 1
    for index in ("0", "1"):
        assert _get(samples, "damon_kdamond_running", kdamond=index) == 1
        assert _get(samples, "damon_kdamond_pid", kdamond=index) == driver.pid(int(index))
    assert _get(samples, "damon_sample_interval_seconds", kdamond="0") == 0.01
    assert _get(samples, "damon_aggregation_interval_seconds", kdamond="0") == 0.2
    assert _get(samples, "damon_ops_update_interval_seconds", kdamond="0") == 1.0
    assert _get(samples, "damon_min_regions", kdamond="0") == 10
    assert _get(samples, "damon_target_pid", kdamond="1", target="0") == 4242
    assert _get(samples, "damon_target_regions", kdamond="0", target="0") == 1
    assert _get(samples, "damon_scheme_info", kdamond="0", scheme="0", action="stat") == 1


def test_scheme_stats_and_tried_regions(tree: tuple[FakeDamonFs, SysfsDriver]) -> None:
    _fake, driver = tree
    samples = _scrape(DamonCollector(driver, driver.modules, Temperature(hot_permil=500,
                                                                         cold_idle_us=1_000_000)))
    scheme = {"kdamond": "0", "scheme": "0"}
    assert _get(samples, "damon_scheme_tried_regions_total", **scheme) == 12
    assert _get(samples, "damon_scheme_applied_bytes_total", **scheme) == 4096 * 3
    assert _get(samples, "damon_scheme_quota_exceeds_total", **scheme) == 1
    assert _get(samples, "damon_scheme_last_tried_regions", **scheme) == 4
    assert _get(samples, "damon_scheme_last_tried_bytes", **scheme) == 0x1400000
    # max nr_accesses 200000/10000 = 20: hot needs >= 10; cold needs age*0.2s >= 1s
    assert _get(samples, "damon_working_set_bytes", **scheme) == 0x300000
    assert _get(samples, "damon_hot_bytes", **scheme) == 0x100000
    assert _get(samples, "damon_cold_bytes", **scheme) == 0x1000000
    assert ("damon_working_set_bytes", frozenset({"kdamond": "1", "scheme": "0"}.items())) not in samples


def test_unknown_counters_give_no_sample(tree: tuple[FakeDamonFs, SysfsDriver],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A counter the kernel does not report (None) is left out, not exported as 0."""
    _fake, driver = tree
    scheme = {"kdamond": "0", "scheme": "0"}
    known = _scrape(DamonCollector(driver, driver.modules))
    assert _get(known, "damon_scheme_ops_filter_passed_bytes_total", **scheme) == 0
    assert _get(known, "damon_scheme_snapshots_total", **scheme) == 0
    monkeypatch.setattr(driver, "scheme_stats", lambda _index: [SchemeStats(12, 4096 * 12, None, None, 0)])
    samples = _scrape(DamonCollector(driver, driver.modules))
    assert _get(samples, "damon_scheme_tried_regions_total", **scheme) == 12
    assert _get(samples, "damon_scheme_quota_exceeds_total", **scheme) == 0  # known to be 0
    for name in ("damon_scheme_applied_regions_total", "damon_scheme_applied_bytes_total",
                 "damon_scheme_ops_filter_passed_bytes_total", "damon_scheme_snapshots_total"):
        assert (name, frozenset(scheme.items())) not in samples


def test_kernels_without_tried_regions_lose_only_those_metrics(tree: tuple[FakeDamonFs, SysfsDriver]) -> None:
    fake, driver = tree
    # Linux 6.1: schemes have no tried_regions/ (6.2)
    shutil.rmtree(fake.base / "kdamonds" / "0" / "contexts" / "0" / "schemes" / "0" / "tried_regions")
    collector = DamonCollector(driver, driver.modules)
    samples = _scrape(collector)
    scheme = {"kdamond": "0", "scheme": "0"}
    assert collector.read_errors == 0
    assert _get(samples, "damon_scheme_tried_regions_total", **scheme) == 12
    assert _get(samples, "damon_kdamond_running", kdamond="1") == 1
    assert ("damon_scheme_last_tried_regions", frozenset(scheme.items())) not in samples


def test_damon_stat_metrics(tree: tuple[FakeDamonFs, SysfsDriver]) -> None:
    _fake, driver = tree
    samples = _scrape(DamonCollector(driver, driver.modules))
    assert _get(samples, "damon_module_enabled", module="damon_stat") == 1
    assert _get(samples, "damon_module_kdamond_pid", module="damon_stat") == 77
    assert _get(samples, "damon_stat_estimated_memory_bandwidth_bytes_per_second") == 123456
    assert _get(samples, "damon_stat_aggregation_interval_seconds") == 0.25
    assert _get(samples, "damon_stat_memory_idle_seconds", percentile="0") == -0.1
    assert _get(samples, "damon_stat_memory_idle_seconds", percentile="50") == 0.4
    assert _get(samples, "damon_stat_memory_idle_seconds", percentile="100") == 0.9


def test_a_scrape_writes_nothing(tree: tuple[FakeDamonFs, SysfsDriver], tmp_path: Path) -> None:
    fake, driver = tree
    writes, files = list(fake.writes), _files(tmp_path)
    collector = DamonCollector(driver, driver.modules)
    _scrape(collector)
    _scrape(collector)
    assert fake.writes == writes
    assert _files(tmp_path) == files
    assert collector.read_errors == 0


def test_an_unreadable_kdamond_is_counted_and_the_rest_still_reported(
        tree: tuple[FakeDamonFs, SysfsDriver]) -> None:
    fake, driver = tree
    (fake.base / "kdamonds" / "1" / "state").unlink()
    samples = _scrape(DamonCollector(driver, driver.modules))
    assert _get(samples, "damon_exporter_read_errors_total") == 1
    assert _get(samples, "damon_kdamond_running", kdamond="0") == 1
    assert ("damon_kdamond_running", frozenset({"kdamond": "1"}.items())) not in samples


def test_no_damon_at_all_gives_only_the_error_counter(tmp_path: Path) -> None:
    driver = SysfsDriver(tmp_path / "admin", owners=OwnershipRegistry(tmp_path / "run"),
                         modules=DamonModules(tmp_path / "module"))
    samples = _scrape(DamonCollector(driver, driver.modules))
    assert samples == {("damon_exporter_read_errors_total", frozenset()): 0}


def test_region_temperatures() -> None:
    regions = [TriedRegion(0, 100, 10, 0), TriedRegion(100, 300, 9, 0), TriedRegion(300, 600, 0, 5),
               TriedRegion(600, 1000, 0, 4)]
    # 20 samples per aggregation; 50% -> hot from 10; cold after 5 aggregations of 0.2 s
    assert region_temperatures(regions, 10_000, 200_000, Temperature(500, 1_000_000)) == (300, 100, 300)


def test_served_over_http(tree: tuple[FakeDamonFs, SysfsDriver]) -> None:
    _fake, driver = tree
    exporter = serve(DamonCollector(driver, driver.modules), "127.0.0.1", 0)
    try:
        with urllib.request.urlopen(exporter.url, timeout=30) as response:
            samples = _parse(response.read().decode())
    finally:
        exporter.shutdown()
    assert _get(samples, "damon_kdamond_running", kdamond="0") == 1
    assert not any(name.startswith(("process_", "python_")) for name, _ in samples)
