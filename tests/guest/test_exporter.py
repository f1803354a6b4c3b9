"""``kdamon exporter`` scraped over HTTP in a guest while kdamonds run.

The metrics must match the sysfs files, and a scrape must write nothing under
/sys but the exporter's own tracefs instances: an audit hook records every
open for writing (and every directory change) under /sys while the exporter
serves.  For another tool's kdamond and DAMON_STAT's (7.3), the hot, warm and
cold gauges come from the tracepoint, with DAMON's sysfs tree and module
parameters byte-identical before and after.  The command also runs confined
as its shipped systemd unit says (tests/guest/confine.py emulates the unit's
file system, /proc and capability settings).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kdamon.backend.host import Host, HostPaths
from kdamon.events.memory import paddr_regions
from kdamon.exporter import AccessWatches, DamonCollector, serve
from kdamon.exporter.shipped import shipped_file
from kdamon.kernel.modules import DamonModules
from kdamon.kernel.sysfs import DEFAULT_ROOT, SysfsDriver
from kdamon.model import Context, Intervals, Kdamond, Scheme, Target
from kdamon.testing.raw_sysfs import raw_write as _raw_write
from kdamon.testing.raw_sysfs import reset_damon
from kdamon.testing.waiting import wait_until
from kdamon.testing.workloads import Layout
from test_cli_guest import damon_tree, start_foreign
from test_live_guest import STAT_OUTPUTS, kdamon_instances

prometheus_parser = pytest.importorskip("prometheus_client.parser")

KDAMONDS = DEFAULT_ROOT / "kdamonds"
DAMON_STAT = Path("/sys/module/damon_stat/parameters")
INSTANCES = Path("/sys/kernel/tracing/instances")
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
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
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in prometheus_parser.text_string_to_metric_families(text)
        for s in family.samples
    }


def _get(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


@pytest.fixture
def exporter_url() -> Iterator[str]:
    exporter = serve(DamonCollector(Host(HostPaths.from_env())), "127.0.0.1", 0)
    try:
        yield exporter.url
    finally:
        exporter.shutdown()


@pytest.fixture
def access_url() -> Iterator[tuple[str, list[str]]]:
    """An exporter with the access watches: its URL and its log lines."""
    host = Host(HostPaths.from_env())
    lines: list[str] = []
    access = AccessWatches(host, report=lines.append)
    access.start()
    exporter = serve(DamonCollector(host, access=access), "127.0.0.1", 0)
    try:
        yield exporter.url, lines
    finally:
        exporter.shutdown()
        access.close()


@pytest.fixture
def kdamonds() -> Iterator[tuple[SysfsDriver, int]]:
    """kdamond 0: kdamon's paddr one with a stat scheme; kdamond 1: another tool's vaddr one."""
    if DamonModules().running():
        pytest.skip("a DAMON module (DAMON_STAT?) holds DAMON: boot without damon_stat.enabled=Y")
    sleeper = subprocess.Popen(["sleep", "600"])
    _raw_write(KDAMONDS / "nr_kdamonds", "2")
    driver = SysfsDriver()
    paddr = Kdamond(
        contexts=(
            Context(
                ops="paddr",
                intervals=Intervals(sample_us=5_000, aggr_us=50_000),
                targets=(Target(regions=paddr_regions()),),
                schemes=(Scheme(action="stat"),),
            ),
        )
    )
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


def test_metrics_match_sysfs_and_nothing_is_written(kdamonds: tuple[SysfsDriver, int], exporter_url: str) -> None:
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
    assert _get(samples, "damon_kdamond_info", kdamond="sysfs:0", owner="kdamon", ops="paddr") == 1
    assert _get(samples, "damon_kdamond_info", kdamond="sysfs:1", owner="foreign", ops="vaddr") == 1
    for k in ("0", "1"):
        assert _get(samples, "damon_kdamond_running", kdamond=f"sysfs:{k}") == 1
        assert _get(samples, "damon_kdamond_pid", kdamond=f"sysfs:{k}") == int(_read(KDAMONDS / k / "pid"))
    assert (
        _get(samples, "damon_sample_interval_seconds", kdamond="sysfs:0")
        == int(_read(attrs_dir / "intervals" / "sample_us")) / 1e6
    )
    assert _get(samples, "damon_aggregation_interval_seconds", kdamond="sysfs:0") == 0.05
    assert _get(samples, "damon_max_regions", kdamond="sysfs:0") == int(_read(attrs_dir / "nr_regions" / "max"))
    assert _get(samples, "damon_target_pid", kdamond="sysfs:1", target="0") == int(
        _read(KDAMONDS / "1" / "contexts" / "0" / "targets" / "0" / "pid_target")
    )
    scheme = {"kdamond": "sysfs:0", "scheme": "0"}
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
    wss = _get(samples, "damon_scheme_last_tried_working_set_bytes", **scheme)
    assert 0 <= wss <= total
    assert _get(samples, "damon_scheme_last_tried_hot_bytes", **scheme) <= wss


@pytest.fixture
def damon_stat() -> Iterator[None]:
    """DAMON_STAT turned on by another user of DAMON (a raw write), and off again."""
    if not (DAMON_STAT / "enabled").exists():
        pytest.skip("this kernel has no DAMON_STAT (Linux 6.17+)")
    reset_damon()
    _raw_write(DAMON_STAT / "enabled", "Y")
    try:
        wait_until(lambda: int(_read(DAMON_STAT / "kdamond_pid")), lambda pid: pid > 0, "DAMON_STAT's kdamond to start")
        yield
    finally:
        _raw_write(DAMON_STAT / "enabled", "N")


def test_damon_stat_metrics(damon_stat: None, exporter_url: str) -> None:
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


def _scrape_until(url: str, ready: Callable[[Samples], bool], timeout_s: float = 180) -> Samples:
    """Scrape until ``ready`` holds: a watch yields its first frame an aggregation or two after it starts."""
    deadline = time.monotonic() + timeout_s
    samples = _scrape(url)
    while not ready(samples) and time.monotonic() < deadline:
        time.sleep(0.5)
        samples = _scrape(url)
    return samples


def _has(name: str, **labels: str) -> Callable[[Samples], bool]:
    return lambda samples: (name, frozenset(labels.items())) in samples


def _adapted(hot: float, cold: float, **target: str) -> Callable[[Samples], bool]:
    """Whether a target's gauges show at least ``hot`` hot and ``cold`` cold bytes (its regions have adapted)."""

    def check(samples: Samples) -> bool:
        def value(name: str) -> float:
            return samples.get((name, frozenset(target.items())), 0.0)

        return value("damon_hot_bytes") >= hot and value("damon_cold_bytes") >= cold

    return check


def _only_instance_writes() -> list[str]:
    """The /sys writes the audit hook saw, but those inside the exporter's own tracefs instances."""
    return [w for w in _sys_writes if not w.split()[1].startswith(str(INSTANCES / "kdamon-"))]


def _assert_summary(samples: Samples, **target: str) -> tuple[float, float, float, float]:
    """Hot, warm, cold and monitored bytes of a target; the histograms add up to the monitored bytes."""
    hot, warm, cold, total = (_get(samples, f"damon_{n}_bytes", **target) for n in ("hot", "warm", "cold", "monitored"))
    assert hot + warm + cold == total > 0
    for histogram in ("damon_temperature_bytes", "damon_recency_bytes"):
        assert (
            sum(v for (name, labels), v in samples.items() if name == histogram and set(target.items()) <= labels)
            == total
        ), histogram
    idle = [
        _get(samples, "damon_idle_seconds", **target, percentile=p) for p in ("0", "25", "50", "75", "90", "99", "100")
    ]
    assert idle == sorted(idle)
    return hot, warm, cold, total


def test_access_gauges_of_a_foreign_kdamond(workload: Layout, access_url: tuple[str, list[str]]) -> None:
    url, lines = access_url
    reset_damon()
    try:
        start_foreign(workload.pid)  # another tool's vaddr kdamond on the workload
        before = damon_tree()
        _sys_writes.clear()
        hot_area = workload.hot[1] - workload.hot[0]
        cold_area = workload.cold[1] - workload.cold[0]
        # a few aggregations: the regions adapt to the hot and the cold area
        samples = _scrape_until(
            url, _adapted(hot_area / 2, cold_area / 2, kdamond="sysfs:0", owner="foreign", target="0")
        )
        assert _only_instance_writes() == [], "the exporter wrote to /sys outside its tracefs instances"
        hot, _warm, cold, _total = _assert_summary(samples, kdamond="sysfs:0", owner="foreign", target="0")
        assert hot >= hot_area / 2, f"{hot} hot bytes, the workload's hot area is {hot_area}"
        assert cold >= cold_area / 2, f"{cold} cold bytes, the workload's cold area is {cold_area}"
        assert _get(samples, "damon_access_watch_up", kdamond="sysfs:0", owner="foreign") == 1
        assert _get(samples, "damon_access_aggregation_interval_seconds", kdamond="sysfs:0", owner="foreign") == 0.1
        assert len(kdamon_instances()) == 1
        assert damon_tree() == before, "the exporter changed DAMON's sysfs tree or module parameters"
    finally:
        reset_damon()
    samples = _scrape(url)  # the kdamond is gone: its watch stops and its instance goes
    assert not any(name == "damon_hot_bytes" for name, _ in samples)
    deadline = time.monotonic() + 30
    while kdamon_instances() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert kdamon_instances() == []
    assert any(line == "stopped watching sysfs:0" for line in lines), lines


def test_access_gauges_of_damon_stat(damon_stat: None, access_url: tuple[str, list[str]]) -> None:
    url, _lines = access_url
    before = {k: v for k, v in damon_tree().items() if Path(k).name not in STAT_OUTPUTS}
    _sys_writes.clear()
    stat = {"kdamond": "module:damon_stat", "owner": "foreign", "target": "0"}
    samples = _scrape_until(url, _has("damon_hot_bytes", **stat))
    assert _only_instance_writes() == []
    hot, warm, _cold, total = _assert_summary(samples, **stat)
    assert total > 256 << 20 and hot + warm > 0, "DAMON_STAT saw no access at all"
    kd = {"kdamond": "module:damon_stat", "owner": "foreign"}
    sample_s = _get(samples, "damon_access_sample_interval_seconds", **kd)
    assert _get(samples, "damon_access_aggregation_interval_seconds", **kd) == pytest.approx(20 * sample_s)
    after = {k: v for k, v in damon_tree().items() if Path(k).name not in STAT_OUTPUTS}
    assert after == before, "the exporter changed DAMON_STAT's parameters or DAMON's sysfs tree"
    assert len(kdamon_instances()) == 1


def _unit_settings() -> dict[str, list[str]]:
    """The [Service] settings of the shipped unit, each key's values in order."""
    settings: dict[str, list[str]] = {}
    section = ""
    for line in shipped_file("unit").read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def test_the_command_runs_confined_as_its_unit_says(workload: Layout, tmp_path: Path) -> None:
    unit = _unit_settings()
    # the settings confine.py emulates (the seccomp and address filters it does not)
    assert (unit["User"], unit["CapabilityBoundingSet"], unit["NoNewPrivileges"]) == (["root"], [""], ["yes"])
    assert (unit["ProtectSystem"], unit["ProtectKernelTunables"]) == (["strict"], ["yes"])
    assert (unit["ProtectProc"], unit["ProcSubset"]) == (["invisible"], ["pid"])
    rw = [path.lstrip("-") for line in unit["ReadWritePaths"] for path in line.split()]
    assert rw == [str(INSTANCES)]
    reset_damon()
    state = tmp_path / "run"
    state.mkdir()
    env = dict(os.environ, KDAMON_STATE_DIR=str(state))
    confine = Path(__file__).with_name("confine.py")
    proc = subprocess.Popen(
        [
            sys.executable,
            str(confine),
            *(f"--rw={p}" for p in rw),
            "--proc=hidepid=invisible,subset=pid",
            "--no-caps",
            "--",
            sys.executable,
            "-m",
            "kdamon",
            "exporter",
            "--port",
            "0",
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        start_foreign(workload.pid)
        before = damon_tree()
        assert proc.stderr is not None
        said = [proc.stderr.readline()]
        while said[-1] and "serving" not in said[-1]:
            said.append(proc.stderr.readline())
        assert "serving" in said[-1], "".join(said)
        status = Path(f"/proc/{proc.pid}/status").read_text()
        assert "CapEff:\t0000000000000000" in status and "NoNewPrivs:\t1" in status, status
        samples = _scrape_until(said[-1].split()[-1], _adapted(1, 1, kdamond="sysfs:0", owner="foreign", target="0"))
        hot, _warm, cold, _total = _assert_summary(samples, kdamond="sysfs:0", owner="foreign", target="0")
        assert hot > 0 and cold > 0
        assert _get(samples, "damon_exporter_read_errors_total") == 0
        assert len(kdamon_instances()) == 1
        proc.send_signal(signal.SIGTERM)  # as systemd stops it
        assert proc.wait(timeout=60) == 0
        assert kdamon_instances() == [], "the exporter left its tracefs instance"
        assert damon_tree() == before
    finally:
        proc.kill()
        proc.wait()
        reset_damon()
