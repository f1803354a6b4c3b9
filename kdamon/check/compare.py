"""Compare two kernels' results: what regressed, what was fixed, what is new or gone."""

from __future__ import annotations

import enum
from typing import Any

import attrs

from kdamon.check.results import CheckResult, KernelReport, Status

__all__ = ["Change", "Comparison", "Row", "change_of", "compare"]


class Change(enum.Enum):
    REGRESSED = "regressed"  # passed (or was skipped) on the baseline, fails now
    FIXED = "fixed"  # failed on the baseline, passes now
    NEW = "new"  # not run on the baseline
    GONE = "gone"  # not run any more
    NOW_SKIPPED = "now skipped"  # ran on the baseline, skipped now
    NOW_RUNS = "now runs"  # skipped on the baseline, passes now
    SAME = "same"


def change_of(before: Status | None, after: Status | None) -> Change:
    """How a check's status moved from the baseline kernel to another one."""
    if before is None:
        return Change.NEW
    if after is None:
        return Change.GONE
    if after.bad and not before.bad:
        return Change.REGRESSED
    if before.bad and after is Status.PASS:
        return Change.FIXED
    if after is Status.SKIP and before is not Status.SKIP:
        return Change.NOW_SKIPPED
    if before is Status.SKIP and after is Status.PASS:
        return Change.NOW_RUNS
    return Change.SAME


@attrs.frozen
class Row:
    id: str
    title: str
    before: CheckResult | None
    after: CheckResult | None
    change: Change

    @property
    def message(self) -> str:
        """The newer result's message (the baseline's for a check that is gone)."""
        latest = self.after or self.before
        return latest.message if latest is not None else ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "baseline": self.before.status.value if self.before else None,
            "status": self.after.status.value if self.after else None,
            "change": self.change.value,
            "message": self.message,
        }


@attrs.frozen
class Comparison:
    """``kernel`` against ``baseline``, one row per check of either, in run order."""

    baseline: str
    kernel: str
    rows: tuple[Row, ...]

    def changed(self) -> list[Row]:
        return [r for r in self.rows if r.change is not Change.SAME]

    def count(self, change: Change) -> int:
        return sum(1 for r in self.rows if r.change is change)

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            "kernel": self.kernel,
            "summary": {c.value: self.count(c) for c in Change},
            "rows": [r.to_dict() for r in self.rows],
        }


def compare(baseline: KernelReport, other: KernelReport) -> Comparison:
    before, after = baseline.by_id(), other.by_id()
    order = list(before) + [i for i in after if i not in before]
    rows = []
    for check_id in order:
        b, a = before.get(check_id), after.get(check_id)
        latest = a or b
        title = latest.title if latest is not None else check_id
        rows.append(Row(check_id, title, b, a, change_of(b.status if b else None, a.status if a else None)))
    return Comparison(baseline.kernel, other.kernel, tuple(rows))
