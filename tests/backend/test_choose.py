"""choose_backend: auto picks kernel DAMON only when it can serve without touching anyone, reading only."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend_fixtures import fake_host, start_foreign, tree
from fake_damon import FakeDamonFs
from kdamon.backend.choose import choose_backend
from kdamon.backend.host import Host, HostPaths
from kdamon.backend.types import MonitorRequest
from kdamon.errors import ConfigError, FeatureMissingError
from kdamon.model import Context, Kdamond, Target

REQUEST = MonitorRequest(Kdamond(contexts=(Context(targets=(Target(pid=4242),)),)))
STREAM = MonitorRequest(REQUEST.kdamond, stream=True)


def _auto(host: Host, request: MonitorRequest = REQUEST) -> tuple[str, str]:
    backend, reason = choose_backend(request, "auto", host=host)
    return backend.name, reason


def test_no_sysfs_means_engine(tmp_path: Path) -> None:
    name, reason = _auto(Host(HostPaths.under(tmp_path)))
    assert name == "engine"
    assert "no DAMON sysfs interface" in reason


def test_idle_kernel_means_sysfs(kernel: tuple[Host, FakeDamonFs]) -> None:
    host, _ = kernel
    name, reason = _auto(host)
    assert name == "sysfs"
    assert "offers vaddr" in reason


def test_running_foreign_kdamond_means_engine_and_no_write(kernel: tuple[Host, FakeDamonFs]) -> None:
    host, fake = kernel
    start_foreign(fake)
    before = tree(host.paths.sysfs_root)
    name, reason = _auto(host)
    assert name == "engine"
    assert "kdamond 0 holds another tool's configuration" in reason and "nr_kdamonds" in reason
    assert fake.writes == []
    assert tree(host.paths.sysfs_root) == before


def test_stopped_foreign_configuration_means_engine(kernel: tuple[Host, FakeDamonFs]) -> None:
    host, fake = kernel
    start_foreign(fake, run=False)
    name, reason = _auto(host)
    assert name == "engine"
    assert "another tool's configuration" in reason and "wipe" in reason


def test_own_stopped_kdamond_is_reused(kernel: tuple[Host, FakeDamonFs]) -> None:
    host, _ = kernel
    index = host.sysfs.allocate()
    host.sysfs.apply(index, REQUEST.kdamond)
    assert _auto(host)[0] == "sysfs"


def test_missing_operations_set_means_engine(kernel: tuple[Host, FakeDamonFs]) -> None:
    host, fake = kernel
    start_foreign(fake, run=False)
    avail = host.paths.sysfs_root / "kdamonds" / "0" / "contexts" / "0" / "avail_operations"
    avail.write_text("paddr\n")
    name, reason = _auto(host)
    assert name == "engine"
    assert "offers only paddr" in reason


def test_kernel_config_without_vaddr_means_engine(tmp_path: Path) -> None:
    host, _ = fake_host(tmp_path)
    assert host.paths.kernel_config is not None
    host.paths.kernel_config.write_text("CONFIG_DAMON=y\n# CONFIG_DAMON_VADDR is not set\n")
    name, reason = _auto(host)
    assert name == "engine"
    assert "CONFIG_DAMON_VADDR" in reason


def test_enabled_module_means_engine(tmp_path: Path) -> None:
    host, _ = fake_host(tmp_path)
    params = host.paths.module_root / "damon_stat" / "parameters"
    params.mkdir(parents=True)
    (params / "enabled").write_text("Y\n")
    name, reason = _auto(host)
    assert name == "engine"
    assert "DAMON_STAT is enabled" in reason


def test_recording_needs_trace_events(tmp_path: Path) -> None:
    host, _ = fake_host(tmp_path)
    name, reason = _auto(host, STREAM)
    assert name == "engine"
    assert "no tracefs" in reason
    assert host.paths.tracefs_root is not None
    (host.paths.tracefs_root / "instances").mkdir(parents=True)
    assert "lacks" in _auto(host, STREAM)[1]
    (host.paths.tracefs_root / "events" / "damon" / "damon_aggregated").mkdir(parents=True)
    assert _auto(host, STREAM)[0] == "sysfs"


def test_explicit_preferences(tmp_path: Path) -> None:
    host = Host(HostPaths.under(tmp_path))
    backend, reason = choose_backend(REQUEST, "engine", host=host)
    assert backend.name == "engine" and "--backend engine" in reason
    with pytest.raises(FeatureMissingError, match="no DAMON sysfs"):
        choose_backend(REQUEST, "sysfs", host=host)
    with pytest.raises(FeatureMissingError, match="no DAMON debugfs"):
        choose_backend(REQUEST, "debugfs", host=host)
    with pytest.raises(ConfigError, match="unknown backend"):
        choose_backend(REQUEST, "kernel", host=host)
