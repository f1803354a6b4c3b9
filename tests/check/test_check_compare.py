from __future__ import annotations

import pytest

from kdamon.check.compare import Change, change_of, compare
from kdamon.check.results import CheckResult, KernelReport, Status

P, F, S, E = Status.PASS, Status.FAIL, Status.SKIP, Status.ERROR


@pytest.mark.parametrize(
    "before,after,change",
    [
        (P, P, Change.SAME),
        (P, F, Change.REGRESSED),
        (P, E, Change.REGRESSED),
        (S, F, Change.REGRESSED),
        (F, P, Change.FIXED),
        (E, P, Change.FIXED),
        (F, E, Change.SAME),
        (F, F, Change.SAME),
        (P, S, Change.NOW_SKIPPED),
        (F, S, Change.NOW_SKIPPED),
        (S, P, Change.NOW_RUNS),
        (S, S, Change.SAME),
        (None, P, Change.NEW),
        (None, F, Change.NEW),
        (P, None, Change.GONE),
    ],
)
def test_change_of(before: Status | None, after: Status | None, change: Change) -> None:
    assert change_of(before, after) is change


def _report(kernel: str, **statuses: Status) -> KernelReport:
    return KernelReport(
        kernel, tuple(CheckResult(i.replace("_", "."), i, s, f"{kernel} {i}") for i, s in statuses.items())
    )


def test_compare_rows_follow_the_baseline_then_new_checks() -> None:
    base = _report("old", a_x=P, a_y=P, a_gone=F)
    other = _report("new", a_y=F, a_x=P, a_new=S)
    cmp = compare(base, other)
    assert [r.id for r in cmp.rows] == ["a.x", "a.y", "a.gone", "a.new"]
    assert [r.change for r in cmp.rows] == [Change.SAME, Change.REGRESSED, Change.GONE, Change.NEW]
    assert [r.id for r in cmp.changed()] == ["a.y", "a.gone", "a.new"]
    assert cmp.count(Change.REGRESSED) == 1
    assert cmp.rows[2].message == "old a_gone" and cmp.rows[1].message == "new a_y"
    data = cmp.to_dict()
    assert data["summary"]["regressed"] == 1 and data["rows"][1] == {
        "id": "a.y",
        "baseline": "pass",
        "status": "fail",
        "change": "regressed",
        "message": "new a_y",
    }
