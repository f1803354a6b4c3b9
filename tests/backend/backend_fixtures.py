"""Helpers for the backend and CLI host tests: a Host on temporary trees.

The emulated kernel is the kernel driver's own ``FakeDamonFs`` (tests/kernel),
imported, not copied.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fake_damon import FakeDamonFs
from kdamon.backend.host import Host, HostPaths


def fake_host(base: Path, version: str = "6.12") -> tuple[Host, FakeDamonFs]:
    """A Host whose DAMON sysfs is an emulated kernel under ``base``."""
    paths = HostPaths.under(base)
    fake = FakeDamonFs(paths.sysfs_root, version)
    return Host(paths, fs=fake), fake


def start_foreign(fake: FakeDamonFs, *, pid: int = 4242, run: bool = True) -> None:
    """Stage kdamond 0 with raw sysfs writes, as another tool would (and start it)."""
    k = fake.base / "kdamonds"
    fake.write(k / "nr_kdamonds", b"1")
    fake.write(k / "0" / "contexts" / "nr_contexts", b"1")
    ctx = k / "0" / "contexts" / "0"
    fake.write(ctx / "targets" / "nr_targets", b"1")
    fake.write(ctx / "targets" / "0" / "pid_target", str(pid).encode())
    if run:
        fake.write(k / "0" / "state", b"on")
    fake.writes.clear()


def tree(base: Path) -> dict[str, str]:
    """Every file under ``base`` with its content."""
    return {str(p.relative_to(base)): p.read_text() for p in sorted(base.rglob("*")) if p.is_file()}


@pytest.fixture(params=["6.12", "7.3"])
def kernel(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Host, FakeDamonFs]:
    """A Host on an emulated kernel of each generation."""
    return fake_host(tmp_path, request.param)
