"""Fixtures for the kernel-driver host tests: a fake DAMON sysfs and a driver on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from fake_damon import FakeDamonFs, make_driver
from kdamon.kernel.sysfs import SysfsDriver


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
