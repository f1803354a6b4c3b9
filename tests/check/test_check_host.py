"""The host side of a check run, with the guest runner replaced by a fake console."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

import kdamon.vm
from kdamon.check.host import check_kernel, run_node_in_guest
from kdamon.check.results import CheckResult, Status, begin_line, end_line, result_line
from kdamon.errors import GuestCrash
from kdamon.vm import GuestResult


class FakeRun:
    """Prints ``lines`` on the console, then returns (or raises ``error``)."""

    def __init__(self, lines: Sequence[str], *, error: Exception | None = None, accel: str = "tcg", exit_code: int = 0) -> None:
        self.lines = lines
        self.error = error
        self.accel = accel
        self.exit_code = exit_code
        self.commands: list[list[str]] = []
        self.kwargs: dict[str, Any] = {}

    def __call__(self, command: Sequence[str], *, output: Callable[[str], None] | None = None, **kwargs: Any) -> GuestResult:
        self.commands.append(list(command))
        self.kwargs = kwargs
        for line in self.lines:
            assert output is not None
            output(line + "\n")
        if self.error is not None:
            raise self.error
        return GuestResult(self.exit_code, Path("/nonexistent/console.log"), "", "virtio", self.accel, 1.0, 0.5)


def _run(monkeypatch: pytest.MonkeyPatch, fake: FakeRun, **kwargs: Any) -> Any:
    monkeypatch.setattr(kdamon.vm, "run", fake)
    return check_kernel("debian-6.12", cpus=1, **kwargs)


R1 = CheckResult("abi.tree", "tree", Status.PASS, group="abi")
R2 = CheckResult("selftests.damos_apply_interval.py", "t", Status.FAIL, "exit=1", group="selftests")


def test_a_complete_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = FakeRun([begin_line({"release": "6.12.117"}), "noise", result_line(R1), result_line(R2), end_line(2)])
    report = _run(monkeypatch, fake, select="abi", selftests=tmp_path)
    assert fake.commands == [["python3", "-m", "kdamon.check.guest", "-k", "abi", "--selftests", str(tmp_path)]]
    assert fake.kwargs["share"] == [tmp_path] and fake.kwargs["cpus"] == 1 and fake.kwargs["kernel"] == "debian-6.12"
    assert "no_timer_check" in fake.kwargs["cmdline"]
    by_id = report.by_id()
    assert report.release == "6.12.117" and report.accel == "tcg"
    assert by_id["abi.tree"] == R1
    assert by_id["selftests.damos_apply_interval.py"].status is Status.SKIP  # TCG limit, with its reason
    assert by_id["kernel.no_warn_bug"].status is Status.PASS
    assert by_id["suite.complete"].status is Status.PASS
    assert report.ok


def test_timing_failures_stay_failures_under_kvm(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeRun([begin_line({}), result_line(R2), end_line(1)], accel="kvm", exit_code=1)
    report = _run(monkeypatch, fake)
    assert report.by_id()[R2.id].status is Status.FAIL and not report.ok


def test_a_crash_keeps_the_results_so_far(monkeypatch: pytest.MonkeyPatch) -> None:
    crash = GuestCrash("the guest kernel reported: WARNING: CPU: 0 at mm/damon/core.c:1", log_path="/x/console.log")
    report = _run(monkeypatch, FakeRun([begin_line({}), result_line(R1)], error=crash))
    by_id = report.by_id()
    assert by_id["abi.tree"].status is Status.PASS
    assert by_id["kernel.no_warn_bug"].status is Status.FAIL and "mm/damon/core.c" in by_id["kernel.no_warn_bug"].message
    assert by_id["suite.complete"].status is Status.ERROR
    assert "after 1 results without finishing" in by_id["suite.complete"].message
    assert not report.ok


def test_a_guest_that_never_started(monkeypatch: pytest.MonkeyPatch) -> None:
    report = _run(monkeypatch, FakeRun(["python3: No module named kdamon"], exit_code=1))
    assert [r.id for r in report.results] == ["kernel.no_warn_bug", "suite.complete"]
    assert "never started" in report.results[1].message


def test_run_node_in_guest(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    node = CheckResult("test_x.something", "t", Status.FAIL, "assert 1 == 2")
    fake = FakeRun([begin_line({}), result_line(node), end_line(1)])
    monkeypatch.setattr(kdamon.vm, "run", fake)
    monkeypatch.setattr("kdamon.check.host.default_cpus", lambda kernel, progress=None: 1)
    test_file = tmp_path / "test_x.py"
    result = run_node_in_guest(test_file, "test_x.py::test_something[a]", rootdir=tmp_path, kernel="debian-7.3", timeout=60)
    assert result == node
    assert fake.commands[0][-2:] == ["--node", f"{test_file}::test_something[a]"]
    assert fake.kwargs["share"] == [tmp_path]


def test_run_node_in_guest_reports_a_crash_as_a_failure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    crash = GuestCrash("the guest kernel reported: BUG: unable to handle page fault", log_path="/x")
    monkeypatch.setattr(kdamon.vm, "run", FakeRun([begin_line({})], error=crash))
    monkeypatch.setattr("kdamon.check.host.default_cpus", lambda kernel, progress=None: 1)
    result = run_node_in_guest(tmp_path / "t.py", "t.py::test_a", rootdir=tmp_path, kernel="k", timeout=60)
    assert result.status is Status.FAIL and "BUG: unable to handle" in result.message
