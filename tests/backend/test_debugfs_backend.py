"""Legacy debugfs behind the Monitor API, on the kernel driver's emulated 6.1 debugfs."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from fake_debugfs import FakeDebugfs
from kdamon.backend.choose import choose_backend
from kdamon.backend.control import backend_of, collect_status
from kdamon.backend.host import Host, HostPaths
from kdamon.backend.types import KdamondId, MonitorRequest
from kdamon.errors import OwnershipError
from kdamon.model import Context, Intervals, Kdamond, Target

KDAMOND = Kdamond(contexts=(Context(targets=(Target(pid=4242),)),))


def _host(tmp_path: Path) -> tuple[Host, FakeDebugfs]:
    paths = HostPaths.under(tmp_path)
    fake = FakeDebugfs(paths.debugfs_root)
    return Host(paths, fs=fake), fake


def test_auto_uses_debugfs_without_sysfs(tmp_path: Path) -> None:
    host, _ = _host(tmp_path)
    assert collect_status(host) == []  # the ever-present root context, empty and idle, is no kdamond
    backend, reason = choose_backend(MonitorRequest(KDAMOND), "auto", host=host)
    assert backend.name == "debugfs" and "legacy debugfs" in reason

    kid, pid = backend.start(KDAMOND)
    assert kid == KdamondId("debugfs", "0") and pid is not None
    [status] = collect_status(host)
    assert (status.id, status.owner, status.running) == (kid, "kdamon", True)

    slower = attrs.evolve(KDAMOND.contexts[0], intervals=Intervals(aggr_us=200000))
    backend_of(kid, host).tune(kid, Kdamond(contexts=(slower,)))
    assert host.debugfs.read(0).contexts[0].intervals.aggr_us == 200000
    assert host.debugfs.pid(0) is not None

    backend.stop(kid)
    assert host.debugfs.pid(0) is None
    assert collect_status(host) == []  # stopped and cleared: listed no more


def test_running_damon_means_engine_and_foreign_context_untouched(tmp_path: Path) -> None:
    host, fake = _host(tmp_path)
    fake.write(host.paths.debugfs_root / "target_ids", b"4343")
    fake.write(host.paths.debugfs_root / "monitor_on", b"on")
    fake.writes.clear()
    backend, reason = choose_backend(MonitorRequest(KDAMOND), "auto", host=host)
    assert backend.name == "engine" and "a DAMON context already runs" in reason
    [status] = collect_status(host)
    assert (status.owner, status.running) == ("foreign", True)
    with pytest.raises(OwnershipError):
        backend_of(status.id, host).stop(status.id)
    assert fake.writes == []
