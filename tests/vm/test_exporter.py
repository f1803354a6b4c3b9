"""``kdamon exporter`` scraped over HTTP in a guest while kdamonds run.

The metrics must match the sysfs files, and a scrape must write nothing under
/sys: an audit hook records every open for writing (and every directory
change) under /sys while the exporter serves.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from kdamon.events.memory import paddr_regions
from kdamon.exporter import DamonCollector, serve
from kdamon.kernel.modules import DamonModules
from kdamon.kernel.sysfs import DEFAULT_ROOT, SysfsDriver
from kdamon.model import Context, Intervals, Kdamond, Scheme, Target
from raw_sysfs import raw_write as _raw_write
from waiting import wait_until

prometheus_parser = pytest.importorskip("prometheus_client.parser")

KDAMONDS = DEFAULT_ROOT / "kdamonds"
DAMON_STAT = Path("/sys/module/damon_stat/parameters")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
_CHANGES = ("os.mkdir", "os.rmdir", "os.remove", "os.rename", "os.truncate", "os.chmod")
_sys_writes: list[str] = []
_recording: list[bool] = [False]


def _audit(event: str, args: tuple[object, ...]) -> None:
    if not _recording[0] or not args:
        return
    path = args[0]
    if isinstance(path, bytes):
        path = path.decode(errors="replace")
    if not isinstance(path, str) or not path.startswith("/sys"):
        return
    if event == "open":
        flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
        mode = args[1] if len(args) > 1 and isinstance(args[1], str) else ""
        if flags & _WRITE_FLAGS or any(c in mode for c in "wax+"):
            _sys_writes.append(f"open {path} {mode or oct(flags)}")
    elif event in _CHANGES:
        _sys_writes.append(f"{event} {path}")


sys.addaudithook(_audit)  # audit hooks stay for the process: _recording gates this one



def _read(path: Path) -> str:
    return path.read_text().strip()


def _scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    _recording[0] = True
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            text = response.read().decode()
    finally:
        _recording[0] = False
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in prometheus_parser.text_string_to_metric_families(text) for s in family.samples}


def _get(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


@pytest.fixture
def exporter_url() -> Iterator[str]:
    driver = SysfsDriver()
    exporter = serve(DamonCollector(driver, driver.modules), "127.0.0.1", 0)
    try:
        yield exporter.url
    finally:
        exporter.shutdown()


@pytest.fixture
def kdamonds() -> Iterator[tuple[SysfsDriver, int]]:
    """kdamond 0: kdamon's paddr one with a stat scheme; kdamond 1: another tool's vaddr one."""
    if DamonModules().running():
        pytest.skip("a DAMON module (DAMON_STAT?) holds DAMON: boot without damon_stat.enabled=Y")
    sleeper = subprocess.Popen(["sleep", "600"])
    _raw_write(KDAMONDS / "nr_kdamonds", "2")
    driver = SysfsDriver()
    paddr = Kdamond(contexts=(Context(ops="paddr", intervals=Intervals(sample_us=5_000, aggr_us=50_000),
                                      targets=(Target(regions=paddr_regions()),),
                                      schemes=(Scheme(action="stat"),)),))
    driver.apply(0, paddr)
    driver.start(0)
    other = KDAMONDS / "1"
    _raw_write(other / "contexts" / "nr_contexts", "1")
    _raw_write(other / "contexts" / "0" / "targets" / "nr_targets", "1")
    _raw_write(other / "contexts" / "0" / "targets" / "0" / "pid_target", str(sleeper.pid))
    _raw_write(other / "state", "on")
    try:
        yield driver, 0
    finally:
        driver.stop(0)
        if _read(other / "state") == "on":
            _raw_write(other / "state", "off")
        sleeper.kill()
        sleeper.wait()
        driver.release(0)
        _raw_write(KDAMONDS / "nr_kdamonds", "0")


def test_metrics_match_sysfs_and_nothing_is_written(kdamonds: tuple[SysfsDriver, int],
                                                    exporter_url: str) -> None:
    driver, index = kdamonds

    def tried() -> int:
        _recording[0] = True  # the hook sees kdamon's own state writes...
        driver.update_schemes_stats(index)
        _recording[0] = False
        return driver.scheme_stats(index)[0].nr_tried

    wait_until(tried, lambda n: n > 0, "the stat scheme to try regions")
    assert _sys_writes and _sys_writes[0].startswith(f"open {KDAMONDS / '0' / 'state'}")
    _sys_writes.clear()
    has_tried = driver.features().has("scheme", "tried_regions")  # 6.2+
    if has_tried:
        driver.update_tried_regions(index)
    samples = _scrape(exporter_url)
    assert _sys_writes == []  # ...and none from the exporter

    scheme_dir = KDAMONDS / "0" / "contexts" / "0" / "schemes" / "0"
    attrs_dir = KDAMONDS / "0" / "contexts" / "0" / "monitoring_attrs"
    assert _get(samples, "damon_kdamond_info", kdamond="0", owner="owned", ops="paddr") == 1
    assert _get(samples, "damon_kdamond_info", kdamond="1", owner="foreign", ops="vaddr") == 1
    for k in ("0", "1"):
        assert _get(samples, "damon_kdamond_running", kdamond=k) == 1
        assert _get(samples, "damon_kdamond_pid", kdamond=k) == int(_read(KDAMONDS / k / "pid"))
    assert _get(samples, "damon_sample_interval_seconds", kdamond="0") == int(
        _read(attrs_dir / "intervals" / "sample_us")) / 1e6
    assert _get(samples, "damon_aggregation_interval_seconds", kdamond="0") == 0.05
    assert _get(samples, "damon_max_regions", kdamond="0") == int(_read(attrs_dir / "nr_regions" / "max"))
    assert _get(samples, "damon_target_pid", kdamond="1", target="0") == int(
        _read(KDAMONDS / "1" / "contexts" / "0" / "targets" / "0" / "pid_target"))
    scheme = {"kdamond": "0", "scheme": "0"}
    nr_tried = int(_read(scheme_dir / "stats" / "nr_tried"))
    assert nr_tried > 0
    assert _get(samples, "damon_scheme_tried_regions_total", **scheme) == nr_tried
    assert _get(samples, "damon_scheme_tried_bytes_total", **scheme) == int(_read(scheme_dir / "stats" / "sz_tried"))
    assert _get(samples, "damon_exporter_read_errors_total") == 0
    if not has_tried:  # no tried_regions/ before 6.2: only those metrics are missing
        assert ("damon_scheme_last_tried_regions", frozenset(scheme.items())) not in samples
        return
    tried = [p for p in (scheme_dir / "tried_regions").iterdir() if p.name.isdigit()]
    assert tried
    assert _get(samples, "damon_scheme_last_tried_regions", **scheme) == len(tried)
    total = int(_read(scheme_dir / "tried_regions" / "total_bytes"))
    assert _get(samples, "damon_scheme_last_tried_bytes", **scheme) == total
    assert 0 <= _get(samples, "damon_working_set_bytes", **scheme) <= total
    assert _get(samples, "damon_hot_bytes", **scheme) <= _get(samples, "damon_working_set_bytes", **scheme)


def test_damon_stat_metrics(exporter_url: str) -> None:
    if not DAMON_STAT.is_dir() or _read(DAMON_STAT / "enabled") != "Y":
        pytest.skip("DAMON_STAT is not running: boot a 7.x guest with --cmdline damon_stat.enabled=Y")
    bandwidth = DAMON_STAT / "estimated_memory_bandwidth"
    before = int(_read(bandwidth))
    samples = _scrape(exporter_url)
    after = int(_read(bandwidth))
    assert _sys_writes == []
    assert _get(samples, "damon_module_enabled", module="damon_stat") == 1
    assert _get(samples, "damon_module_kdamond_pid", module="damon_stat") == int(_read(DAMON_STAT / "kdamond_pid"))
    assert _get(samples, "damon_stat_estimated_memory_bandwidth_bytes_per_second") in (before, after)
    idle = [_get(samples, "damon_stat_memory_idle_seconds", percentile=str(p)) for p in range(101)]
    assert idle == sorted(idle)
