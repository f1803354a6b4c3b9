"""JUnit XML, JSON and the terminal tables."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from kdamon.check.compare import compare
from kdamon.check.render import comparison_table, results_table, summary_line
from kdamon.check.report import to_json, to_junit
from kdamon.check.results import CheckResult, KernelReport, Status


def _reports() -> list[KernelReport]:
    old = KernelReport(
        "debian-6.12",
        (
            CheckResult("abi.tree", "tree", Status.PASS, "", 0.5, "abi"),
            CheckResult("errno.on", "on", Status.PASS, "", 0.25, "errno"),
            CheckResult("state.kw[x]", "kw", Status.SKIP, "needs Linux 6.15+", 0.0, "state"),
        ),
        "6.12.117",
        "tcg",
        90.0,
    )
    new = KernelReport(
        "debian-7.3",
        (
            CheckResult("abi.tree", "tree", Status.PASS, "", 0.75, "abi"),
            CheckResult("errno.on", "on", Status.FAIL, 'got ENOMEM <want> & "EINVAL"', 0.5, "errno"),
            CheckResult("state.kw[x]", "kw", Status.PASS, "", 0.1, "state"),
            CheckResult("kernel.no_warn_bug", "no bug", Status.ERROR, "undecided", 0.0, "kernel"),
        ),
        "7.3.4",
        "tcg",
        80.0,
    )
    return [old, new]


def test_junit_has_one_suite_per_kernel_and_one_case_per_check() -> None:
    root = ET.fromstring(to_junit(_reports()))
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == ("7", "1", "1", "1")
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["debian-6.12", "debian-7.3"]
    new = suites[1]
    assert (new.get("tests"), new.get("failures"), new.get("errors"), new.get("skipped")) == ("4", "1", "1", "0")
    props = {p.get("name"): p.get("value") for p in new.iter("property")}
    assert props["release"] == "7.3.4" and props["accel"] == "tcg"
    cases = {c.get("name"): c for c in new.findall("testcase")}
    assert cases["errno.on"].get("classname") == "kdamon.check.debian-7.3.errno"
    assert cases["errno.on"].get("time") == "0.500"
    failure = cases["errno.on"].find("failure")
    assert failure is not None and failure.get("message") == 'got ENOMEM <want> & "EINVAL"'
    assert cases["kernel.no_warn_bug"].find("error") is not None
    assert cases["abi.tree"].find("failure") is None and cases["abi.tree"].find("skipped") is None
    skipped = suites[0].find("testcase[@name='state.kw[x]']/skipped")
    assert skipped is not None and skipped.get("message") == "needs Linux 6.15+"


def test_json_document() -> None:
    reports = _reports()
    doc = json.loads(json.dumps(to_json(reports, [compare(*reports)])))
    assert doc["ok"] is False
    assert [k["kernel"] for k in doc["kernels"]] == ["debian-6.12", "debian-7.3"]
    assert doc["kernels"][1]["results"][1]["duration_s"] == 0.5
    assert KernelReport.from_dict(doc["kernels"][0]) == reports[0]
    (cmp,) = doc["comparisons"]
    assert cmp["baseline"] == "debian-6.12" and cmp["summary"]["regressed"] == 1 and cmp["summary"]["new"] == 1
    assert cmp["summary"]["now runs"] == 1


def test_results_table() -> None:
    report = _reports()[1]
    table = results_table(report, width=100)
    lines = table.splitlines()
    assert lines[0].split() == ["STATUS", "CHECK", "SECS", "MESSAGE"]
    assert any(line.startswith("FAIL") and "errno.on" in line and "ENOMEM" in line for line in lines)
    assert lines[-1] == summary_line(report)
    assert "2 pass, 1 fail, 0 skip, 1 error" in lines[-1]
    assert all(len(line) <= 100 for line in lines[:-1])
    assert results_table(_reports()[0], failures_only=True) == summary_line(_reports()[0])
    bad_only = results_table(report, failures_only=True)
    assert "abi.tree" not in bad_only and "errno.on" in bad_only and "kernel.no_warn_bug" in bad_only


def test_comparison_table_lists_only_changes() -> None:
    old, new = _reports()
    table = comparison_table(compare(old, new), width=120)
    lines = table.splitlines()
    assert lines[0] == "debian-7.3 against debian-6.12:"
    assert not any(line.startswith("abi.tree") for line in lines)
    row = next(line for line in lines if line.startswith("errno.on"))
    assert row.split()[1:4] == ["pass", "FAIL", "regressed"]
    assert any(line.startswith("kernel.no_warn_bug") and " - " in line and "new" in line for line in lines)
    assert lines[-1] == "1 regressed, 1 new, 1 now runs, 1 same"


def test_comparison_table_without_changes() -> None:
    old = _reports()[0]
    assert "(no check changed status)" in comparison_table(compare(old, old))
