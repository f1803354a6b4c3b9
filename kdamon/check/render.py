"""``kdamon check`` reports for people: a result table per kernel and a side-by-side comparison."""

from __future__ import annotations

from collections.abc import Sequence

from kdamon.check.compare import Change, Comparison
from kdamon.check.results import CheckResult, KernelReport, Status

__all__ = ["comparison_table", "results_table", "summary_line"]

_MARK = {Status.PASS: "pass", Status.FAIL: "FAIL", Status.SKIP: "skip", Status.ERROR: "ERROR"}


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], last_width: int) -> list[str]:
    widths = [max([len(header[i])] + [len(r[i]) for r in rows]) for i in range(len(header) - 1)]
    out = []
    for row in [header, *rows]:
        cells = [row[i].ljust(widths[i]) for i in range(len(widths))]
        out.append("  ".join([*cells, _clip(row[-1], last_width)]).rstrip())
    return out


def summary_line(report: KernelReport) -> str:
    counts = ", ".join(f"{report.count(s)} {s.value}" for s in Status)
    where = f" ({report.release}, {report.accel})" if report.release else ""
    return f"{report.kernel}{where}: {counts} in {report.elapsed_s:.0f} s"


def results_table(report: KernelReport, *, width: int = 120, failures_only: bool = False) -> str:
    """Status, check id, seconds and message of every check (or only the bad ones)."""
    rows = [
        (_MARK[r.status], r.id, f"{r.duration_s:.1f}", r.message or r.title)
        for r in report.results
        if not failures_only or r.status.bad
    ]
    if not rows:
        return summary_line(report)
    used = 2 + max([6] + [len(r[1]) for r in rows]) + 2 + 6 + 2
    lines = _table(("STATUS", "CHECK", "SECS", "MESSAGE"), rows, max(width - used, 20))
    return "\n".join([*lines, summary_line(report)])


def _status(result: CheckResult | None) -> str:
    return _MARK[result.status] if result is not None else "-"


def comparison_table(comparison: Comparison, *, width: int = 120) -> str:
    """The checks whose status differs between the baseline and the other kernel, side by side."""
    rows = [(r.id, _status(r.before), _status(r.after), r.change.value, r.message) for r in comparison.changed()]
    header = ("CHECK", _clip(comparison.baseline, 24), _clip(comparison.kernel, 24), "CHANGE", "MESSAGE")
    used = sum(max([len(header[i])] + [len(r[i]) for r in rows]) + 2 for i in range(4))
    title = f"{comparison.kernel} against {comparison.baseline}:"
    counts = ", ".join(f"{comparison.count(c)} {c.value}" for c in Change if comparison.count(c))
    body = _table(header, rows, max(width - used, 20)) if rows else ["(no check changed status)"]
    return "\n".join([title, *body, counts])
