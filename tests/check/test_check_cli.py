"""``kdamon check`` with the guest runs replaced by canned reports."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from kdamon.check import host
from kdamon.check.results import CheckResult, KernelReport, Status
from kdamon.cli.main import main
from kdamon.errors import GuestError

STATUSES = {
    "debian-6.12": {"abi.tree": Status.PASS, "errno.on": Status.PASS, "state.kw": Status.SKIP},
    "debian-7.3": {"abi.tree": Status.PASS, "errno.on": Status.FAIL, "trace.new": Status.PASS},
}


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []

    def fake(kernel: str, **kwargs: Any) -> KernelReport:
        seen.append({"kernel": kernel, **kwargs})
        results = tuple(
            CheckResult(i, i, s, f"{kernel}:{i}", 0.5, i.split(".")[0]) for i, s in STATUSES[kernel].items()
        )
        return KernelReport(kernel, results, "x.y", "tcg", 12.0)

    monkeypatch.setattr(host, "check_kernel", fake)
    return seen


def test_two_kernels_with_junit_and_json(
    calls: list[dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junit, doc = tmp_path / "out.xml", tmp_path / "out.json"
    code = main(
        [
            "check",
            "--kernel",
            "debian-6.12",
            "--kernel",
            "debian-7.3",
            "--junit",
            str(junit),
            "--json",
            str(doc),
            "-k",
            "abi or errno",
        ]
    )
    assert code == 1
    assert [c["kernel"] for c in calls] == ["debian-6.12", "debian-7.3"]
    assert calls[0]["select"] == "abi or errno" and calls[0]["selftests"] is None
    out = capsys.readouterr().out
    assert "debian-7.3 against debian-6.12:" in out
    assert any(line.startswith("errno.on") and "regressed" in line for line in out.splitlines())
    assert any(line.startswith("trace.new") and "new" in line for line in out.splitlines())
    root = ET.parse(junit).getroot()
    assert [s.get("name") for s in root.findall("testsuite")] == ["debian-6.12", "debian-7.3"]
    assert root.get("failures") == "1"
    data = json.loads(doc.read_text())
    assert data["comparisons"][0]["summary"]["regressed"] == 1
    assert data["kernels"][1]["results"][1]["status"] == "fail"


def test_one_passing_kernel_exits_0_and_lists_everything_with_all(
    calls: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "--kernel", "debian-6.12", "--all"]) == 0
    out = capsys.readouterr().out
    assert "abi.tree" in out and "state.kw" in out and "against" not in out


def test_without_all_only_bad_checks_are_listed(
    calls: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    main(["check", "--kernel", "debian-7.3"])
    out = capsys.readouterr().out
    assert "errno.on" in out and "abi.tree" not in out


def test_outputs_are_checked_before_the_guests_and_kept_when_a_kernel_fails(
    calls: list[dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-dir" / "out.json"
    assert main(["check", "--kernel", "debian-6.12", "--json", str(missing)]) == 1
    assert calls == []  # refused before any guest ran
    assert f"kdamon: error: {missing}: No such file or directory" in capsys.readouterr().err

    def crash(kernel: str, **kwargs: Any) -> KernelReport:
        raise GuestError("the guest could not boot")

    monkeypatch.setattr(host, "check_kernel", crash)
    doc = tmp_path / "out.json"
    doc.write_text("the previous run's results")
    assert main(["check", "--kernel", "debian-6.12", "--json", str(doc)]) == 1
    assert doc.read_text() == "the previous run's results"
    assert sorted(os.listdir(tmp_path)) == ["out.json"]


def test_no_kernel_is_an_error(calls: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check"]) == 2
    assert "--kernel" in capsys.readouterr().err
    assert calls == []
