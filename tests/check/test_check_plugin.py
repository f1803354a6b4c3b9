"""kdamon's pytest plugin on the host: the damon_guest marker and the fixtures."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest

import kdamon.vm
from kdamon.check import host
from kdamon.check.results import CheckResult, Status, begin_line, result_line
from kdamon.errors import GuestCrash

RunPytest = Callable[..., tuple[int, list[CheckResult]]]  # the run_pytest fixture (conftest.py)

MARKED = """
import pytest

@pytest.mark.damon_guest(kernel="debian-7.3")
def test_in_guest():
    raise AssertionError("the body must not run on the host")
"""


class FakeGuest:
    """Stands in for ``run_nodes_in_guest``: records each guest run, answers each node from ``results``."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, str], str, float]] = []  # ({check id: target's file::rest}, kernel, timeout)
        self.results: dict[str, CheckResult] = {}
        self.default = CheckResult("x", "x", Status.PASS)

    def __call__(
        self, nodes: Mapping[str, str], *, rootdir: Path, kernel: str, timeout: float
    ) -> dict[str, CheckResult]:
        self.calls.append(({i: Path(target).name for i, target in nodes.items()}, kernel, timeout))
        return {i: self.results.get(i, self.default) for i in nodes}


@pytest.fixture
def guest(monkeypatch: pytest.MonkeyPatch) -> FakeGuest:
    fake = FakeGuest()
    monkeypatch.setattr(host, "run_nodes_in_guest", fake)
    monkeypatch.delenv("KDAMON_GUEST", raising=False)
    return fake


@pytest.mark.parametrize("status", list(Status))
def test_marked_test_runs_in_the_guest(run_pytest: RunPytest, guest: FakeGuest, status: Status) -> None:
    guest.default = CheckResult("x", "x", status, "guest said so")
    _, (result,) = run_pytest(MARKED)
    assert guest.calls == [({"sample.in_guest": "test_sample.py::test_in_guest"}, "debian-7.3", 600.0)]
    assert result.status is status
    if status is not Status.PASS:
        assert "guest said so" in result.message and "debian-7.3" in result.message


def test_kernel_option_overrides_the_marker(run_pytest: RunPytest, guest: FakeGuest) -> None:
    run_pytest(MARKED, "--damon-guest-kernel", "/boot/bzImage")
    assert guest.calls[0][1] == "/boot/bzImage"


TWO_KERNELS = """
import pytest

@pytest.mark.damon_guest(kernel="debian-7.3")
def test_first():
    pass

def test_here():
    pass

@pytest.mark.damon_guest("linux-6.1-dbgfs")
def test_other_kernel():
    pass

@pytest.mark.damon_guest(kernel="debian-7.3")
@pytest.mark.parametrize("n", [1])
def test_second(n):
    pass
"""


def test_one_guest_runs_every_test_of_its_kernel(run_pytest: RunPytest, guest: FakeGuest) -> None:
    guest.results = {"sample.second[1]": CheckResult("sample.second[1]", "s", Status.FAIL, "second failed")}
    _, results = run_pytest(TWO_KERNELS.replace("linux-6.1-dbgfs", "debian-7.3"), "--damon-guest-timeout", "10")
    assert guest.calls == [
        (
            {
                "sample.first": "test_sample.py::test_first",
                "sample.other_kernel": "test_sample.py::test_other_kernel",
                "sample.second[1]": "test_sample.py::test_second[1]",
            },
            "debian-7.3",
            30.0,
        )
    ]
    assert [(r.id, r.status) for r in results] == [
        ("sample.first", Status.PASS),
        ("sample.here", Status.PASS),
        ("sample.other_kernel", Status.PASS),
        ("sample.second[1]", Status.FAIL),
    ]
    assert "second failed" in results[3].message


def test_one_guest_per_kernel(run_pytest: RunPytest, guest: FakeGuest) -> None:
    _, results = run_pytest(TWO_KERNELS)
    assert [(sorted(nodes), kernel) for nodes, kernel, _ in guest.calls] == [
        (["sample.first", "sample.second[1]"], "debian-7.3"),
        (["sample.other_kernel"], "linux-6.1-dbgfs"),
    ]
    assert [r.status for r in results] == [Status.PASS] * 4


def test_the_kernel_option_puts_every_test_in_one_guest(run_pytest: RunPytest, guest: FakeGuest) -> None:
    run_pytest(TWO_KERNELS, "--damon-guest-kernel", "/boot/bzImage")
    assert [(len(nodes), kernel) for nodes, kernel, _ in guest.calls] == [(3, "/boot/bzImage")]


def test_exitfirst_boots_no_guest_for_tests_it_does_not_run(run_pytest: RunPytest, guest: FakeGuest) -> None:
    guest.results = {"sample.first": CheckResult("sample.first", "f", Status.FAIL, "first failed")}
    code, results = run_pytest(TWO_KERNELS, "-x")
    assert code == pytest.ExitCode.TESTS_FAILED
    assert [kernel for _, kernel, _ in guest.calls] == ["debian-7.3"]
    assert [(r.id, r.status) for r in results] == [("sample.first", Status.FAIL)]


def test_a_skipped_test_is_not_sent(run_pytest: RunPytest, guest: FakeGuest) -> None:
    _, results = run_pytest("""
import pytest

@pytest.mark.damon_guest(kernel="debian-7.3")
def test_first():
    pass

@pytest.mark.skipif("1 + 1 == 2", reason="not today")
@pytest.mark.damon_guest(kernel="debian-7.3")
def test_skipped():
    pass
""")
    assert guest.calls == [({"sample.first": "test_sample.py::test_first"}, "debian-7.3", 600.0)]
    assert [(r.id, r.status, r.message) for r in results] == [
        ("sample.first", Status.PASS, ""),
        ("sample.skipped", Status.SKIP, "not today"),
    ]


def test_same_named_tests_get_a_guest_each(run_pytest: RunPytest, guest: FakeGuest, tmp_path: Path) -> None:
    """Results carry check ids: a second sample.in_guest waits for its own guest; sample.later is not run twice."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "test_sample.py").write_text(
        MARKED
        + """
@pytest.mark.damon_guest(kernel="debian-7.3")
def test_later():
    pass
"""
    )
    _, results = run_pytest(MARKED, str(tmp_path / "sub"))
    assert [list(nodes) for nodes, _, _ in guest.calls] == [["sample.in_guest", "sample.later"], ["sample.in_guest"]]
    assert [r.status for r in results] == [Status.PASS] * 3


def test_a_crash_mid_guest_errors_only_the_tests_without_a_result(
    run_pytest: RunPytest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real run_nodes_in_guest, with a guest whose kernel crashes after the first test's result."""
    commands: list[list[str]] = []

    def crashing_run(command: Sequence[str], *, output: Callable[[str], None], **kwargs: object) -> None:
        commands.append(list(command))
        output(begin_line({}) + "\n")
        output(result_line(CheckResult("sample.first", "first", Status.PASS)) + "\n")
        raise GuestCrash("the guest kernel reported: BUG: kernel NULL pointer dereference", log_path="/x/console.log")

    monkeypatch.setattr(kdamon.vm, "run", crashing_run)
    monkeypatch.setattr(host, "default_cpus", lambda kernel, progress=None: 1)
    monkeypatch.delenv("KDAMON_GUEST", raising=False)
    _, results = run_pytest(TWO_KERNELS.replace("linux-6.1-dbgfs", "debian-7.3"))
    assert len(commands) == 1 and commands[0].count("--node") == 3
    assert [(r.id, r.status) for r in results] == [
        ("sample.first", Status.PASS),
        ("sample.here", Status.PASS),
        ("sample.other_kernel", Status.ERROR),
        ("sample.second[1]", Status.ERROR),
    ]
    assert all("BUG: kernel NULL pointer dereference" in r.message for r in results[2:])


def test_unmarked_tests_run_here(run_pytest: RunPytest, guest: FakeGuest) -> None:
    _, (result,) = run_pytest("def test_here():\n    assert True\n")
    assert result.status is Status.PASS and guest.calls == []


def test_skip_markers_win_over_the_guest(run_pytest: RunPytest, guest: FakeGuest) -> None:
    _, (result,) = run_pytest("""
import pytest

@pytest.mark.skipif(True, reason="not today")
@pytest.mark.damon_guest(kernel="debian-7.3")
def test_in_guest():
    pass
""")
    assert result.status is Status.SKIP and result.message == "not today" and guest.calls == []


def test_marker_is_registered(run_pytest: RunPytest) -> None:
    _, (result,) = run_pytest("""
def test_it(request):
    assert any(m.startswith("damon_guest(kernel=") for m in request.config.getini("markers"))
""")
    assert result.status is Status.PASS, result.message


def test_damon_sysfs_is_skipped_on_the_host_with_a_reason(
    run_pytest: RunPytest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KDAMON_GUEST", raising=False)
    _, (result,) = run_pytest("def test_it(damon_sysfs):\n    raise AssertionError('must not run')\n")
    assert result.status is Status.SKIP and "needs a kdamon guest" in result.message


def test_damon_is_the_engine_on_the_host(run_pytest: RunPytest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KDAMON_GUEST", raising=False)
    _, (result,) = run_pytest(
        "def test_it(damon):\n    assert damon.name == 'engine'\n    assert damon.status() == []\n"
    )
    assert result.status is Status.PASS, result.message


def test_workload_fixtures(run_pytest: RunPytest) -> None:
    _, results = run_pytest("""
import os

def test_hot_cold(hot_cold_workload):
    layout = hot_cold_workload.layout
    assert layout.kind == "hot_cold" and len(layout.areas) == 2
    assert os.path.exists(f"/proc/{hot_cold_workload.pid}")

def test_stairs(stairs_workload):
    assert stairs_workload.layout.sequence() == (0, 1, 2, 3)

def test_zigzag(zigzag_workload):
    assert zigzag_workload.layout.sequence() == (0, 1, 2, 3, 2, 1)
""")
    assert [(r.id, r.status) for r in results] == [
        ("sample.hot_cold", Status.PASS),
        ("sample.stairs", Status.PASS),
        ("sample.zigzag", Status.PASS),
    ]
