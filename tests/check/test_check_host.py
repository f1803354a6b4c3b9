"""The host side of a check run, with the guest runner replaced by a fake console."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

import kdamon.vm
from kdamon.check.host import check_kernel, run_nodes_in_guest
from kdamon.check.results import CheckResult, Status, begin_line, end_line, result_line
from kdamon.errors import GuestCrash, GuestError, GuestTimeout, MissingExtraError
from kdamon.vm import GuestResult


class FakeRun:
    """Prints ``lines`` on the console, then returns (or raises ``error``)."""

    def __init__(
        self, lines: Sequence[str], *, error: Exception | None = None, accel: str = "tcg", exit_code: int = 0
    ) -> None:
        self.lines = lines
        self.error = error
        self.accel = accel
        self.exit_code = exit_code
        self.commands: list[list[str]] = []
        self.kwargs: dict[str, Any] = {}

    def __call__(
        self, command: Sequence[str], *, output: Callable[[str], None] | None = None, **kwargs: Any
    ) -> GuestResult:
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


def test_a_mutant_run_asks_the_guest_to_stop_at_a_new_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeRun([begin_line({}), result_line(R1), end_line(1)])
    _run(monkeypatch, fake, stop_on_failure_of={"state.on", "abi.tree"})
    assert fake.commands == [
        ["python3", "-m", "kdamon.check.guest", "--stop-on-failure-of", "abi.tree", "--stop-on-failure-of", "state.on"]
    ]


def test_timing_failures_stay_failures_under_kvm(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeRun([begin_line({}), result_line(R2), end_line(1)], accel="kvm", exit_code=1)
    report = _run(monkeypatch, fake)
    assert report.by_id()[R2.id].status is Status.FAIL and not report.ok


def test_a_crash_keeps_the_results_so_far(monkeypatch: pytest.MonkeyPatch) -> None:
    crash = GuestCrash("the guest kernel reported: WARNING: CPU: 0 at mm/damon/core.c:1", log_path="/x/console.log")
    report = _run(monkeypatch, FakeRun([begin_line({}), result_line(R1)], error=crash))
    by_id = report.by_id()
    assert by_id["abi.tree"].status is Status.PASS
    assert (
        by_id["kernel.no_warn_bug"].status is Status.FAIL and "mm/damon/core.c" in by_id["kernel.no_warn_bug"].message
    )
    assert by_id["suite.complete"].status is Status.ERROR
    assert "after 1 results without finishing" in by_id["suite.complete"].message
    assert not report.ok


def test_a_guest_that_never_started(monkeypatch: pytest.MonkeyPatch) -> None:
    report = _run(monkeypatch, FakeRun(["python3: No module named kdamon"], exit_code=1))
    assert [r.id for r in report.results] == ["kernel.no_warn_bug", "suite.complete"]
    assert "never started" in report.results[1].message


def test_a_timeout_leaves_the_kernel_check_undecided(monkeypatch: pytest.MonkeyPatch) -> None:
    timeout = GuestTimeout("the guest did not finish within 1200 s; QEMU was killed", log_path="/x/console.log")
    check = _run(monkeypatch, FakeRun([begin_line({}), result_line(R1)], error=timeout)).by_id()["kernel.no_warn_bug"]
    assert check.status is Status.ERROR and check.message.startswith(
        "undecided: the guest did not finish within 1200 s"
    )


FIRST = CheckResult("x.first", "first", Status.PASS)
SECOND = CheckResult("x.second[a]", "second", Status.FAIL, "assert 1 == 2")


def _run_nodes(monkeypatch: pytest.MonkeyPatch, fake: FakeRun, rootdir: Path) -> dict[str, CheckResult]:
    monkeypatch.setattr(kdamon.vm, "run", fake)
    monkeypatch.setattr("kdamon.check.host.default_cpus", lambda kernel, progress=None: 1)
    nodes = {"x.first": f"{rootdir}/test_x.py::test_first", "x.second[a]": f"{rootdir}/test_x.py::test_second[a]"}
    return run_nodes_in_guest(nodes, rootdir=rootdir, kernel="debian-7.3", timeout=60)


def test_run_nodes_in_guest_runs_them_in_one_guest(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = FakeRun([begin_line({}), result_line(FIRST), "noise", result_line(SECOND), end_line(2)], exit_code=1)
    results = _run_nodes(monkeypatch, fake, tmp_path)
    assert results == {"x.first": FIRST, "x.second[a]": SECOND}
    assert fake.commands == [
        [
            "python3",
            "-m",
            "kdamon.check.guest",
            "--rootdir",
            str(tmp_path),
            "--node",
            f"{tmp_path}/test_x.py::test_first",
            "--node",
            f"{tmp_path}/test_x.py::test_second[a]",
        ]
    ]
    assert fake.kwargs["share"] == [tmp_path] and fake.kwargs["kernel"] == "debian-7.3" and fake.kwargs["timeout"] == 60


def test_a_crash_mid_batch_keeps_the_results_so_far(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    crash = GuestCrash("the guest kernel reported: BUG: unable to handle page fault", log_path="/x")
    results = _run_nodes(monkeypatch, FakeRun([begin_line({}), result_line(FIRST)], error=crash), tmp_path)
    assert results["x.first"] == FIRST
    second = results["x.second[a]"]
    assert second.status is Status.ERROR and "before this test's result" in second.message
    assert "BUG: unable to handle page fault" in second.message


def test_a_timeout_mid_batch_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    timeout = GuestTimeout("the guest did not finish within 60 s; QEMU was killed", log_path="/x")
    results = _run_nodes(monkeypatch, FakeRun([begin_line({}), result_line(FIRST)], error=timeout), tmp_path)
    assert results["x.first"] == FIRST
    assert (
        results["x.second[a]"].status is Status.ERROR and "did not finish within 60 s" in results["x.second[a]"].message
    )


def test_a_node_without_a_result_line_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    collect = CheckResult("x.collect", "collect", Status.ERROR, "SyntaxError: invalid syntax")
    fake = FakeRun([begin_line({}), result_line(FIRST), result_line(collect), end_line(2)])
    results = _run_nodes(monkeypatch, fake, tmp_path)
    assert results["x.first"] == FIRST
    second = results["x.second[a]"]
    assert second.status is Status.ERROR and "no result line for this test" in second.message
    assert "x.collect: SyntaxError" in second.message


def test_a_guest_that_cannot_boot_fails_every_node(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    results = _run_nodes(monkeypatch, FakeRun([], error=GuestError("no such kernel: debian-7.3")), tmp_path)
    assert [(r.status, "no such kernel" in r.message) for r in results.values()] == [(Status.ERROR, True)] * 2


def test_without_the_check_extra_nothing_boots_and_the_extra_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from kdamon import distribution

    monkeypatch.setattr(distribution, "_declared", lambda: ([], {"check": ["kdamon-no-such-pytest>=8"]}))
    fake = FakeRun([begin_line({}), end_line(0)])
    with pytest.raises(MissingExtraError, match=r"kdamon-no-such-pytest>=8 \(not installed\).*'kdamon\[check\]'"):
        _run(monkeypatch, fake)
    results = _run_nodes(monkeypatch, fake, tmp_path)
    assert fake.commands == []
    assert {r.status for r in results.values()} == {Status.ERROR}
    assert all("pip install 'kdamon[check]'" in r.message for r in results.values())
