"""Fixtures for the kernel-driver host tests: a fake DAMON sysfs and a driver on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from kdamon.kernel.modules import DamonModules
from kdamon.kernel.ownership import OwnershipRegistry
from kdamon.kernel.sysfs import SysfsDriver
from kdamon.kernel.sysfs_io import SysfsIO
from fake_damon import FakeDamonFs


def make_driver(tmp_path: Path, version: str) -> tuple[SysfsDriver, FakeDamonFs]:
    fake = FakeDamonFs(tmp_path / "admin", version)
    io = SysfsIO(fake, sleep=lambda _s: None)
    driver = SysfsDriver(
        tmp_path / "admin",
        io=io,
        owners=OwnershipRegistry(tmp_path / "run"),
        modules=DamonModules(tmp_path / "module", io=io),
    )
    return driver, fake


@pytest.fixture(params=["6.12", "7.3"])
def kernel(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[SysfsDriver, FakeDamonFs]:
    """A driver on a fake tree of each kernel generation."""
    return make_driver(tmp_path, request.param)


@pytest.fixture
def kernel612(tmp_path: Path) -> tuple[SysfsDriver, FakeDamonFs]:
    return make_driver(tmp_path, "6.12")


@pytest.fixture
def kernel73(tmp_path: Path) -> tuple[SysfsDriver, FakeDamonFs]:
    return make_driver(tmp_path, "7.3")
