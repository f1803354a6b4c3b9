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
    assert entry["stats"] == [{"nr_tried": 3, "sz_tried": 12288, "nr_applied": None, "sz_applied": None,
                               "qt_exceeds": None, "sz_ops_filter_passed": None, "nr_snapshots": None}]


def test_scheme_ages_are_also_shown_as_durations_at_the_aggregation_interval() -> None:
    scheme = Scheme(action="cold", access_pattern=AccessPattern(age_min=50, age_max=600))
    kdamond = Kdamond(contexts=(Context(intervals=Intervals(aggr_us=200_000), targets=(Target(pid=7),),
                                        schemes=(scheme,)),))
    lines = format_status(KdamondStatus(KdamondId("engine", "0"), "kdamon", True, 9, kdamond, ()))
    [line] = [line for line in lines if "scheme 0:" in line]
    assert "age 50..600 aggregations (10s..2m)" in line
