"""kdamon status: scheme counters a kernel does not report are unknown, never 0; ages read as durations."""

from __future__ import annotations

import json
from pathlib import Path

from cli_helpers import Kdamon
from fake_debugfs import FakeDebugfs
from kdamon.backend.host import Host, HostPaths
from kdamon.backend.types import KdamondId, KdamondStatus
from kdamon.cli.status import format_status, status_json
from kdamon.model import AccessPattern, Context, Intervals, Kdamond, Scheme, SchemeStats, Target

STAT = "0 18446744073709551615 0 4294967295 0 4294967295 5 0 0 0 0 0 0 0 0 0 0 0\n"


def _status(stats: SchemeStats) -> KdamondStatus:
    kdamond = Kdamond(contexts=(Context(targets=(Target(pid=4242),), schemes=(Scheme(),)),))
    return KdamondStatus(KdamondId("debugfs", "0"), "kdamon", True, 812, kdamond, (stats,))


def test_known_counters_are_shown_even_when_0() -> None:
    status = _status(SchemeStats(3, 12288, 0, 0, 0))
    assert format_status(status)[-1].strip() == "tried 3 (12KiB), applied 0 (0B), quota exceeded 0"
    stats = status_json(status)["stats"][0]
    assert (stats["nr_applied"], stats["sz_applied"], stats["qt_exceeds"]) == (0, 0, 0)


def test_unknown_counters_are_dashes_and_null() -> None:
    status = _status(SchemeStats(3, 12288, None, None, None))
    assert format_status(status)[-1].strip() == "tried 3 (12KiB), applied - (-), quota exceeded -"
    stats = json.loads(json.dumps(status_json(status)))["stats"][0]
    assert (stats["nr_tried"], stats["sz_tried"]) == (3, 12288)
    assert stats["nr_applied"] is None and stats["sz_applied"] is None and stats["qt_exceeds"] is None


def test_status_of_a_5_16_debugfs_context(tmp_path: Path, kdamon: Kdamon) -> None:
    """Linux 5.16's debugfs reads back only nr_tried and sz_tried."""
    paths = HostPaths.under(tmp_path)
    fake = FakeDebugfs(paths.debugfs_root, "5.16")
    host = Host(paths, fs=fake)
    fake.write(paths.debugfs_root / "target_ids", b"4343")
    fake.write(paths.debugfs_root / "schemes", STAT.encode())
    fake.write(paths.debugfs_root / "monitor_on", b"on")
    fake.count_stats("", (3, 12288))

    code, out, _ = kdamon(host, "status")
    assert code == 0
    assert "tried 3 (12KiB), applied - (-), quota exceeded -" in out
    code, out, _ = kdamon(host, "status", "--json")
    [entry] = json.loads(out)
    assert entry["stats"] == [
        {
            "nr_tried": 3,
            "sz_tried": 12288,
            "nr_applied": None,
            "sz_applied": None,
            "qt_exceeds": None,
            "sz_ops_filter_passed": None,
            "nr_snapshots": None,
        }
    ]


def test_scheme_ages_are_also_shown_as_durations_at_the_aggregation_interval() -> None:
    scheme = Scheme(action="cold", access_pattern=AccessPattern(age_min=50, age_max=600))
    kdamond = Kdamond(
        contexts=(Context(intervals=Intervals(aggr_us=200_000), targets=(Target(pid=7),), schemes=(scheme,)),)
    )
    lines = format_status(KdamondStatus(KdamondId("engine", "0"), "kdamon", True, 9, kdamond, ()))
    [line] = [line for line in lines if "scheme 0:" in line]
    assert "age 50..600 aggregations (10s..2m)" in line


def test_refresh_asks_kdamons_own_kdamonds_only(tmp_path: Path, kdamon: Kdamon) -> None:
    from backend_fixtures import fake_host, start_foreign, tree

    host, fake = fake_host(tmp_path / "own", "7.3")
    code, _, err = kdamon(host, "start", "--target-pid", "4242", "--scheme", "action=stat", "--scheme", "action=cold")
    assert code == 0, err
    fake.stats = {0: (5, 20480, 2, 8192, 0), 1: (1, 4096, 1, 4096, 0)}
    [entry] = json.loads(kdamon(host, "status", "--json")[1])
    assert entry["stats"][0]["nr_tried"] == 0 and entry["refreshed"] is None  # as last copied: never
    code, out, err = kdamon(host, "status", "--json", "--refresh")
    assert code == 0, err
    [entry] = json.loads(out)
    assert (entry["stats"][0]["nr_tried"], entry["stats"][1]["sz_applied"]) == (5, 4096)
    refreshed = entry["refreshed"]
    assert refreshed["tuned_intervals"] == [5000, 100000] and len(refreshed["effective_quota_bytes"]) == 2
    assert len(refreshed["tried"]) == 2
    text = kdamon(host, "status", "--refresh")[1]
    assert "tuned intervals now: sample 5ms, aggr 100ms" in text and "tried at its last application" in text
    kdamon(host, "stop")

    host, fake = fake_host(tmp_path / "foreign", "7.3")
    start_foreign(fake)
    before = tree(fake.base)
    code, out, err = kdamon(host, "status", "--refresh")
    assert code == 0, err
    assert "foreign" in out and "kdamon never asks another tool's kdamond" not in out  # it has no scheme
    assert fake.writes == [] and tree(fake.base) == before


def test_refresh_notes_only_what_the_kdamond_could_use(tmp_path: Path, kdamon: Kdamon) -> None:
    """6.12 has no intervals goal, and a kdamond without schemes has no quotas or tried regions:
    nothing to say about the request keywords the kernel lacks."""
    from backend_fixtures import fake_host

    host, fake = fake_host(tmp_path, "6.12")
    code, _, err = kdamon(host, "start", "--target-pid", "4242")
    assert code == 0, err
    fake.writes.clear()
    code, out, err = kdamon(host, "status", "--json", "--refresh")
    assert code == 0, err
    [entry] = json.loads(out)
    assert entry["refreshed"]["tuned_intervals"] is None and entry["refreshed"]["notes"] == []
    assert [data for path, data in fake.writes if path.endswith("/state")] == ["update_schemes_stats"]
