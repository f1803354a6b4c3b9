"""DAMON_STAT/RECLAIM/LRU_SORT detection and the EBUSY explanation."""

from __future__ import annotations

from pathlib import Path

import pytest

from fake_damon import FakeDamonFs
from kdamon.errors import BusyError, KernelError
from kdamon.kernel.modules import DamonModules
from kdamon.kernel.sysfs import SysfsDriver
from kdamon.kernel.sysfs_io import SysfsIO
from test_sysfs import vaddr


def module(root: Path, name: str, enabled: str, pid: int) -> None:
    params = root / name / "parameters"
    params.mkdir(parents=True)
    (params / "enabled").write_text(enabled + "\n")
    (params / "kdamond_pid").write_text(f"{pid}\n")


def test_detects_enabled_modules(tmp_path: Path) -> None:
    module(tmp_path, "damon_stat", "Y", 77)
    module(tmp_path, "damon_reclaim", "N", -1)
    mods = DamonModules(tmp_path, io=SysfsIO())
    assert mods.present() == ["damon_stat", "damon_reclaim"]
    assert [(m.name, m.kdamond_pid) for m in mods.running()] == [("damon_stat", 77)]
    reclaim = mods.status("damon_reclaim")
    assert reclaim is not None and reclaim.enabled is False and reclaim.kdamond_pid is None
    assert mods.status("damon_lru_sort") is None
    assert mods.parameters("damon_stat") == {"enabled": "Y", "kdamond_pid": "77"}
    with pytest.raises(KernelError, match="not a DAMON module"):
        mods.read_parameter("ext4", "x")


def test_write_parameter_only_on_request(tmp_path: Path) -> None:
    module(tmp_path, "damon_stat", "Y", 77)
    mods = DamonModules(tmp_path, io=SysfsIO())
    mods.write_parameter("damon_stat", "enabled", False)
    assert (tmp_path / "damon_stat/parameters/enabled").read_text() == "N"


def test_on_ebusy_names_the_module_pid_and_the_fix(kernel: tuple[SysfsDriver, FakeDamonFs]) -> None:
    driver, fake = kernel
    module(driver.modules.root, "damon_stat", "Y", 77)
    fake.exclusive_users = {"damon_stat"}
    with pytest.raises(BusyError) as info:
        driver.launch(vaddr())
    msg = str(info.value)
    assert "DAMON_STAT" in msg and "pid 77" in msg
    assert "echo N > " in msg and "damon_stat.enabled=N" in msg
    assert (driver.modules.root / "damon_stat/parameters/enabled").read_text() == "Y\n"
    assert (fake.base / "kdamonds/nr_kdamonds").read_text() == "0\n"


def test_on_ebusy_without_a_module_names_the_other_suspects(kernel: tuple[SysfsDriver, FakeDamonFs]) -> None:
    driver, fake = kernel
    fake.exclusive_users = {"debugfs"}
    with pytest.raises(BusyError, match="debugfs interface"):
        driver.launch(vaddr())
    assert (fake.base / "kdamonds/nr_kdamonds").read_text() == "0\n"
