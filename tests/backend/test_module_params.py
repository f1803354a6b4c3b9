"""DAMON module parameters: only present keys, typed values, commit_inputs only when enabled."""

from __future__ import annotations

from pathlib import Path

import pytest

from kdamon.backend.host import Host, HostPaths
from kdamon.backend.module_params import ModuleParams
from kdamon.errors import ConfigError, KernelError

RECLAIM = {
    "enabled": "N",
    "commit_inputs": "N",
    "min_age": "120000000",
    "quota_sz": "134217728",
    "quota_ms": "10",
    "wmarks_high": "500",
    "skip_anon": "N",
    "kdamond_pid": "-1",
    "nr_reclaimed_regions": "0",
    "monitor_region_start": "0",
}


def _host(tmp_path: Path, params: dict[str, str] = RECLAIM) -> Host:
    host = Host(HostPaths.under(tmp_path))
    d = host.paths.module_root / "damon_reclaim" / "parameters"
    d.mkdir(parents=True)
    for name, value in params.items():
        (d / name).write_text(value + "\n")
    return host


def _value(host: Host, name: str) -> str:
    return (host.paths.module_root / "damon_reclaim" / "parameters" / name).read_text().strip()


def test_read_marks_statistics(tmp_path: Path) -> None:
    params = {p.name: p for p in ModuleParams(_host(tmp_path), "reclaim").read()}
    assert params["min_age"].value == "120000000" and params["min_age"].kind == "us"
    assert params["kdamond_pid"].kind == params["nr_reclaimed_regions"].kind == "read-only"


def test_set_converts_units_and_commits_only_when_enabled(tmp_path: Path) -> None:
    host = _host(tmp_path)
    module = ModuleParams(host, "reclaim")
    values = module.validate(
        ["min_age=5s", "quota_sz=1GiB", "wmarks_high=60%", "skip_anon=yes", "monitor_region_start=0x100000"]
    )
    assert values == [
        ("min_age", "5000000"),
        ("quota_sz", str(1 << 30)),
        ("wmarks_high", "600"),
        ("skip_anon", "Y"),
        ("monitor_region_start", str(0x100000)),
    ]
    assert module.write(values) is False
    assert (_value(host, "min_age"), _value(host, "commit_inputs")) == ("5000000", "N")
    (host.paths.module_root / "damon_reclaim" / "parameters" / "enabled").write_text("Y\n")
    assert module.write(module.validate(["quota_ms=20ms"])) is True
    assert (_value(host, "quota_ms"), _value(host, "commit_inputs")) == ("20", "Y")


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("nonsense=1", "no such parameter"),
        ("nr_reclaimed_regions=3", "read-only"),
        ("kdamond_pid=3", "read-only"),
        ("enabled=Y", "enable|disable"),
        ("skip_anon=maybe", "Y or N"),
        ("quota_ms=-3", "expected"),
        ("min_age", "KEY=VALUE"),
    ],
)
def test_bad_assignments_are_refused_before_any_write(tmp_path: Path, item: str, message: str) -> None:
    host = _host(tmp_path)
    with pytest.raises(ConfigError, match=message):
        ModuleParams(host, "reclaim").validate(["quota_ms=50", item])
    assert _value(host, "quota_ms") == "10"


def test_enable_and_disable(tmp_path: Path) -> None:
    host = _host(tmp_path)
    module = ModuleParams(host, "reclaim")
    module.set_enabled(True)
    assert module.enabled() and _value(host, "enabled") == "Y"
    module.set_enabled(False)
    assert not module.enabled()


def test_missing_module(tmp_path: Path) -> None:
    with pytest.raises(KernelError, match="CONFIG_DAMON_LRU_SORT"):
        ModuleParams(_host(tmp_path), "lru_sort").read()
    with pytest.raises(ConfigError, match="unknown DAMON module"):
        ModuleParams(_host(tmp_path / "x"), "swap")
