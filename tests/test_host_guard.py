"""The host safety net itself: opening the host's DAMON files from a test is refused before any syscall."""

from __future__ import annotations

import os

import _host_guard
import pytest

from kdamon.testing.guest import in_guest


@pytest.mark.skipif(in_guest(), reason="the guard is for host runs only")
@pytest.mark.parametrize(
    "path",
    [
        "/sys/kernel/mm/damon/admin/kdamonds/nr_kdamonds",
        "/sys/kernel/tracing/instances/x/trace",
        "/sys/kernel/debug/damon/attrs",
    ],
)
def test_opening_a_guarded_path_is_refused(path: str) -> None:
    before = len(_host_guard.violations)
    with pytest.raises(_host_guard.HostDamonAccess):
        os.open(path, os.O_WRONLY)
    with pytest.raises(_host_guard.HostDamonAccess):
        open(path).close()
    assert _host_guard.violations[before:] == [path, path]
    del _host_guard.violations[before:]  # expected here: don't fail this test's teardown


def test_other_paths_are_not_guarded(tmp_path: object) -> None:
    with open("/proc/self/status") as f:
        assert f.readline().startswith("Name:")
