from __future__ import annotations

import json

import pytest

from kdamon.check.results import (
    CheckResult,
    KernelReport,
    Status,
    begin_line,
    end_line,
    parse_console,
    result_line,
)


def _r(check_id: str, status: Status = Status.PASS, message: str = "") -> CheckResult:
    return CheckResult(check_id, f"title of {check_id}", status, message, 1.25, group=check_id.split(".")[0])


def test_result_line_round_trips_through_the_console() -> None:
    results = [_r("abi.tree"), _r("errno.x[a]", Status.FAIL, 'quote " and\nnewline'), _r("s.k", Status.SKIP, "why")]
    lines = [begin_line({"release": "6.12.1"})] + [result_line(r) for r in results] + [end_line(3)]
    assert all("\n" not in line for line in lines)
    parsed = parse_console(line + "\n" for line in lines)
    assert parsed.results == tuple(results)
    assert parsed.info == {"release": "6.12.1"}
    assert parsed.complete


def test_markers_after_other_text_and_noise_are_found() -> None:
    lines = ["[    1.0] kernel says hi", ".F" + result_line(_r("a.b", Status.FAIL)), "random", "s" + end_line(1)]
    parsed = parse_console(lines)
    assert [r.id for r in parsed.results] == ["a.b"]
    assert parsed.ended and parsed.expected_count == 1
    assert not parsed.began and not parsed.complete  # no begin line


def test_garbled_lines_are_kept_and_make_the_run_incomplete() -> None:
    good = result_line(_r("a.b"))
    broken = good[: len(good) // 2] + "[  3.1] printk in the middle" + good[len(good) // 2 :]
    parsed = parse_console([begin_line({}), broken, end_line(1)])
    assert parsed.results == ()
    assert len(parsed.garbled) == 1
    assert not parsed.complete


def test_missing_end_line_means_incomplete() -> None:
    parsed = parse_console([begin_line({}), result_line(_r("a.b"))])
    assert not parsed.ended and not parsed.complete


def test_kernel_report_counts_and_round_trips() -> None:
    report = KernelReport(
        "debian-6.12", (_r("a.x"), _r("a.y", Status.ERROR), _r("a.z", Status.SKIP)), "6.12.1", "tcg", 3.0
    )
    assert report.count(Status.PASS) == 1 and report.count(Status.ERROR) == 1
    assert not report.ok
    data = json.loads(json.dumps(report.to_dict()))
    assert data["summary"] == {"pass": 1, "fail": 0, "skip": 1, "error": 1}
    assert KernelReport.from_dict(data) == report


@pytest.mark.parametrize(
    "status,bad", [(Status.PASS, False), (Status.SKIP, False), (Status.FAIL, True), (Status.ERROR, True)]
)
def test_bad_statuses(status: Status, bad: bool) -> None:
    assert status.bad is bad
    assert KernelReport("k", (_r("a.b", status),)).ok is not bad


def test_an_empty_report_is_not_ok() -> None:
    assert not KernelReport("k", ()).ok
