"""Guest tests: they drive the real DAMON of a kdamon QEMU guest and run nowhere else.

Being in this folder is what makes a test a guest test: on the host every test collected from
here is skipped (users' tests mark theirs with the pytest plugin's ``damon_guest`` instead).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kdamon.kernel.modules import DamonModules
from kdamon.kernel.ownership import OwnershipRegistry
from kdamon.kernel.sysfs import SysfsDriver
from kdamon.kernel.sysfs_io import SysfsIO
from kdamon.testing.guest import in_guest
from kdamon.testing.raw_sysfs import reset_damon
from kdamon.testing.workloads import Layout
from kdamon_cli import Kdamon
from logging_fs import LoggingFs

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if in_guest():
        return
    skip = pytest.mark.skip(
        reason="guest test: runs inside a kdamon QEMU guest (kdamon vm run -- python3 -m pytest tests/guest)"
    )
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(skip)


@pytest.fixture
def kdamon(tmp_path: Path) -> Iterator[Kdamon]:
    """kdamon's command line, as its own process, with a state directory of the test's; DAMON reset around."""
    reset_damon()
    runner = Kdamon(tmp_path / "run")
    yield runner
    runner("stop", check=False)
    reset_damon()


@pytest.fixture
def workload(tmp_path: Path) -> Iterator[Layout]:
    layout_file = tmp_path / "layout.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kdamon.testing.workloads",
            "hot_cold",
            "--sizes",
            "8MiB",
            "64MiB",
            "--seconds",
            "600",
            "--layout",
            str(layout_file),
        ]
    )
    deadline = time.monotonic() + 60
    while not layout_file.exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the workload did not start"
        time.sleep(0.05)
    yield Layout.from_json(layout_file.read_text())
    proc.kill()
    proc.wait()


@pytest.fixture
def fs() -> LoggingFs:
    return LoggingFs()


@pytest.fixture
def driver(tmp_path: Path, fs: LoggingFs) -> Iterator[SysfsDriver]:
    reset_damon()
    io = SysfsIO(fs)
    yield SysfsDriver(io=io, owners=OwnershipRegistry(tmp_path / "run"), modules=DamonModules(io=io))
    reset_damon()
