"""Access gauges of every running kdamond, fed by the tracepoint stream (fake tracefs, synthesized pages)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest

from fleet import Exporting, Fleet, MiB, exporting, get, has_frames, scrape


@pytest.fixture
def exported(fleet: Fleet) -> Iterator[Exporting]:
    with exporting(fleet.host) as exported:
        yield exported


ALL = ("sysfs:0", "sysfs:1", "module:damon_stat")


def test_every_running_kdamond_gets_access_gauges(fleet: Fleet, exported: Exporting) -> None:
    before = fleet.damon_files()
    samples = exported.scrape_until(has_frames(*ALL))
    own = {"kdamond": "sysfs:0", "owner": "kdamon", "target": "0"}
    # the latest aggregation (the older one had nothing accessed): 1 MiB hot, 3 MiB warm, 16 MiB cold
    assert get(samples, "damon_hot_bytes", **own) == 1 * MiB
    assert get(samples, "damon_warm_bytes", **own) == 3 * MiB
    assert get(samples, "damon_cold_bytes", **own) == 16 * MiB
    assert get(samples, "damon_monitored_bytes", **own) == 20 * MiB
    assert get(samples, "damon_regions", **own) == 4
    rates = {
        dict(labels)["rate"]: value
        for (name, labels), value in samples.items()
        if name == "damon_temperature_bytes" and dict(labels)["kdamond"] == "sysfs:0"
    }
    assert rates == {
        "0": 17 * MiB,
        "0.1": 0,
        "10": 0,
        "20": 2 * MiB,
        "30": 0,
        "40": 0,
        "50": 0,
        "60": 0,
        "70": 0,
        "80": 0,
        "90": 1 * MiB,
    }
    assert get(samples, "damon_recency_bytes", **own, age="0") == 4 * MiB  # ages 0 to 0.4 s
    assert get(samples, "damon_recency_bytes", **own, age="1") == 16 * MiB  # 6 s
    # idle times: -0.6 s (2 MiB accessed for 3 aggregations), -0.2 s, 0.6 s, 6.2 s (16 MiB)
    assert get(samples, "damon_idle_seconds", **own, percentile="0") == pytest.approx(-0.6)
    assert get(samples, "damon_idle_seconds", **own, percentile="50") == pytest.approx(6.2)
    kd = {"kdamond": "sysfs:0", "owner": "kdamon"}
    assert get(samples, "damon_access_watch_up", **kd) == 1
    assert get(samples, "damon_access_aggregation_interval_seconds", **kd) == 0.2
    assert get(samples, "damon_access_lost_snapshots_total", **kd) == 0
    assert abs(get(samples, "damon_access_frame_timestamp_seconds", **kd) - time.time()) < 3600

    foreign = {"kdamond": "sysfs:1", "owner": "foreign", "target": "0"}
    assert (get(samples, "damon_hot_bytes", **foreign), get(samples, "damon_cold_bytes", **foreign)) == (8192, 24576)
    stat = {"kdamond": "module:damon_stat", "owner": "foreign", "target": "0"}
    assert get(samples, "damon_warm_bytes", **stat) == 32 * MiB
    assert get(samples, "damon_cold_bytes", **stat) == 64 * MiB
    # DAMON_STAT tunes its intervals: those of its tune event (50 ms, 20 samples per aggregation)
    assert get(samples, "damon_access_sample_interval_seconds", kdamond="module:damon_stat", owner="foreign") == 0.05
    assert (
        get(samples, "damon_access_aggregation_interval_seconds", kdamond="module:damon_stat", owner="foreign") == 1.0
    )
    for kdamond in ALL:
        assert sum(
            value
            for (name, labels), value in samples.items()
            if name == "damon_recency_bytes" and dict(labels)["kdamond"] == kdamond
        ) == sum(
            value
            for (name, labels), value in samples.items()
            if name == "damon_monitored_bytes" and dict(labels)["kdamond"] == kdamond
        )

    assert fleet.damon_files() == before and fleet.fs.writes == [], "the exporter wrote to DAMON"
    assert {path.split("/")[1].startswith("kdamon-") for path, _ in fleet.fs.tracing.writes} == {True}
    assert len(fleet.instances) == 3
    exported.access.close()
    assert fleet.instances == [], "an instance was left behind"


def test_watches_follow_kdamonds_that_stop_and_start(fleet: Fleet, exported: Exporting) -> None:
    exported.scrape_until(has_frames(*ALL))
    params = fleet.base / "module" / "damon_stat" / "parameters"
    (params / "enabled").write_text("N\n")  # DAMON_STAT is turned off
    (params / "kdamond_pid").write_text("-1\n")
    samples = scrape(exported.collector)
    assert not any(dict(labels).get("kdamond") == "module:damon_stat" for _, labels in samples)
    assert get(samples, "damon_hot_bytes", kdamond="sysfs:0", owner="kdamon", target="0") == 1 * MiB
    deadline = time.monotonic() + 60
    while len(fleet.instances) > 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(fleet.instances) == 2, "the gone kdamond's instance stays"
    (params / "enabled").write_text("Y\n")  # and on again
    (params / "kdamond_pid").write_text("1\n")
    samples = exported.scrape_until(has_frames("module:damon_stat"))
    assert get(samples, "damon_cold_bytes", kdamond="module:damon_stat", owner="foreign", target="0") == 64 * MiB
    assert any("stopped watching module:damon_stat" in line for line in exported.lines), exported.lines


def test_no_trace_makes_no_instance(fleet: Fleet) -> None:
    with exporting(fleet.host, trace=False) as exported:
        samples = scrape(exported.collector)
        assert get(samples, "damon_exporter_trace_enabled") == 0
        for kdamond, owner in (("sysfs:0", "kdamon"), ("sysfs:1", "foreign"), ("module:damon_stat", "foreign")):
            assert get(samples, "damon_access_watch_up", kdamond=kdamond, owner=owner) == 0
        assert not any(name == "damon_hot_bytes" for name, _ in samples)
        assert ("damon_exporter_tracefs_available", frozenset()) not in samples
    assert fleet.fs.tracing.writes == [] and fleet.instances == []


def test_missing_tracefs_is_said(fleet: Fleet) -> None:
    (fleet.base / "tracing" / "instances").rmdir()  # tracefs not mounted
    with exporting(fleet.host) as exported:
        samples = scrape(exported.collector)
        assert get(samples, "damon_exporter_tracefs_available") == 0
        assert get(samples, "damon_access_watch_up", kdamond="sysfs:0", owner="kdamon") == 0
        scrape(exported.collector)
        assert [line for line in exported.lines if "tracefs" in line] == [
            "no tracefs is mounted: no access metrics for kernel kdamonds; mount it "
            "(mount -t tracefs nodev /sys/kernel/tracing) or run with --no-trace"
        ]


def test_a_failing_watch_is_counted_reported_once_and_retried(fleet: Fleet) -> None:
    fleet.fs.tracing.damon_events = ()  # a kernel built without DAMON's trace events
    with exporting(fleet.host, retry_s=0) as exported:
        samples = exported.scrape_until(lambda s: get(s, "damon_exporter_watch_errors_total") >= 6)
        assert get(samples, "damon_exporter_watch_errors_total") >= 6  # three kdamonds, tried again
        failures = [line for line in exported.lines if line.startswith("cannot watch sysfs:0")]
        assert len(failures) == 1 and "has no DAMON trace events" in failures[0], exported.lines
    assert fleet.instances == [], "a failed watch left its instance"
    assert fleet.fs.writes == []


def test_instances_of_dead_kdamon_processes_are_removed_at_start(fleet: Fleet) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = fleet.base / "tracing" / "instances" / f"kdamon-{gone.pid}-0-77"
    stale.mkdir()
    with exporting(fleet.host) as exported:
        assert f"removed the tracefs instance {stale.name} of a kdamon process that is gone" in exported.lines
        assert not stale.exists()
