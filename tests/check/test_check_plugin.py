"""kdamon's pytest plugin on the host: the damon_guest marker and the fixtures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from kdamon.check import host
from kdamon.check.results import CheckResult, Status

RunPytest = Callable[..., tuple[int, list[CheckResult]]]  # the run_pytest fixture (conftest.py)

MARKED = '''
import pytest

@pytest.mark.damon_guest(kernel="debian-7.3")
def test_in_guest():
    raise AssertionError("the body must not run on the host")
'''


class FakeGuest:
    """Stands in for ``run_node_in_guest``: records each call, returns ``result``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.result = CheckResult("x", "x", Status.PASS)

    def __call__(self, path: Path, nodeid: str, *, rootdir: Path, kernel: str, timeout: float) -> CheckResult:
        self.calls.append((path.name, nodeid, kernel))
        return self.result


@pytest.fixture
def guest(monkeypatch: pytest.MonkeyPatch) -> FakeGuest:
    fake = FakeGuest()
    monkeypatch.setattr(host, "run_node_in_guest", fake)
    monkeypatch.delenv("KDAMON_GUEST", raising=False)
    return fake


@pytest.mark.parametrize("status", list(Status))
def test_marked_test_runs_in_the_guest(run_pytest: RunPytest, guest: FakeGuest, status: Status) -> None:
    guest.result = CheckResult("x", "x", status, "guest said so")
    _, (result,) = run_pytest(MARKED)
    assert guest.calls == [("test_sample.py", "test_sample.py::test_in_guest", "debian-7.3")]
    assert result.status is status
    if status is not Status.PASS:
        assert "guest said so" in result.message and "debian-7.3" in result.message


def test_kernel_option_overrides_the_marker(run_pytest: RunPytest, guest: FakeGuest) -> None:
    run_pytest(MARKED, "--damon-guest-kernel", "/boot/bzImage")
    assert guest.calls[0][2] == "/boot/bzImage"


def test_unmarked_tests_run_here(run_pytest: RunPytest, guest: FakeGuest) -> None:
    _, (result,) = run_pytest("def test_here():\n    assert True\n")
    assert result.status is Status.PASS and guest.calls == []


def test_skip_markers_win_over_the_guest(run_pytest: RunPytest, guest: FakeGuest) -> None:
    _, (result,) = run_pytest('''
import pytest

@pytest.mark.skipif(True, reason="not today")
@pytest.mark.damon_guest(kernel="debian-7.3")
def test_in_guest():
    pass
''')
    assert result.status is Status.SKIP and result.message == "not today" and guest.calls == []


def test_marker_is_registered(run_pytest: RunPytest) -> None:
    _, (result,) = run_pytest('''
def test_it(request):
    assert any(m.startswith("damon_guest(kernel=") for m in request.config.getini("markers"))
''')
    assert result.status is Status.PASS, result.message


def test_damon_sysfs_is_skipped_on_the_host_with_a_reason(run_pytest: RunPytest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KDAMON_GUEST", raising=False)
    _, (result,) = run_pytest("def test_it(damon_sysfs):\n    raise AssertionError('must not run')\n")
    assert result.status is Status.SKIP and "needs a kdamon guest" in result.message


def test_damon_is_the_engine_on_the_host(run_pytest: RunPytest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KDAMON_GUEST", raising=False)
    _, (result,) = run_pytest("def test_it(damon):\n    assert damon.name == 'engine'\n    assert damon.status() == []\n")
    assert result.status is Status.PASS, result.message


def test_workload_fixtures(run_pytest: RunPytest) -> None:
    _, results = run_pytest('''
import os

def test_hot_cold(hot_cold_workload):
    layout = hot_cold_workload.layout
    assert layout.kind == "hot_cold" and len(layout.areas) == 2
    assert os.path.exists(f"/proc/{hot_cold_workload.pid}")

def test_stairs(stairs_workload):
    assert stairs_workload.layout.sequence() == (0, 1, 2, 3)

def test_zigzag(zigzag_workload):
    assert zigzag_workload.layout.sequence() == (0, 1, 2, 3, 2, 1)
''')
    assert [(r.id, r.status) for r in results] == [
        ("sample.hot_cold", Status.PASS), ("sample.stairs", Status.PASS), ("sample.zigzag", Status.PASS)]
