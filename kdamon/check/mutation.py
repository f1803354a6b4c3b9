"""What ``kdamon check --mutants`` found: each mutant's outcome, the score, a table and JSON.

A mutant is *killed* when a check that passed on the unmodified tree fails
(or errors) on it, *survived* when every such check still passes: no check
observes its line.  A mutant the compiler rejects is *not built*; one whose
compiled object is byte for byte the unmodified tree's (the line is compiled
out, or the change is folded away) is *equivalent* and never booted.  The
score is killed / (killed + survived).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any

import attrs

from kdamon.check.mutants import Mutant
from kdamon.check.results import KernelReport, Status

__all__ = ["MutantOutcome", "MutantStatus", "MutationReport", "killers", "mutation_table"]


class MutantStatus(enum.Enum):
    KILLED = "killed"
    SURVIVED = "survived"
    NOT_BUILT = "not built"
    EQUIVALENT = "equivalent"


def killers(baseline: KernelReport, report: KernelReport) -> tuple[str, ...]:
    """The checks that passed on the baseline and fail or error in ``report``."""
    passed = {r.id for r in baseline.results if r.status is Status.PASS}
    return tuple(r.id for r in report.results if r.status.bad and r.id in passed)


@attrs.frozen
class MutantOutcome:
    mutant: Mutant
    status: MutantStatus
    killed_by: tuple[str, ...] = ()
    detail: str = ""  # the compiler's complaint, or the first killing check's message
    build_s: float = 0.0
    check_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        m = self.mutant
        return {
            "id": m.id, "file": m.file, "line": m.line, "operator": m.operator,
            "original": m.original.strip(), "mutated": m.mutated.strip(),
            "status": self.status.value, "killed_by": list(self.killed_by), "detail": self.detail,
            "build_s": round(self.build_s, 1), "check_s": round(self.check_s, 1),
        }  # fmt: skip


@attrs.frozen
class MutationReport:
    """Every mutant's outcome against the unmodified tree's check results (``baseline``)."""

    source: str
    seed: int
    count: int  # mutants asked per file
    baseline: KernelReport
    outcomes: tuple[MutantOutcome, ...]
    baseline_build_s: float = 0.0
    elapsed_s: float = 0.0

    def number(self, status: MutantStatus) -> int:
        return sum(1 for o in self.outcomes if o.status is status)

    @property
    def score(self) -> float | None:
        """killed / (killed + survived); None when no mutant was decided."""
        killed, survived = self.number(MutantStatus.KILLED), self.number(MutantStatus.SURVIVED)
        return killed / (killed + survived) if killed + survived else None

    def survivors(self) -> list[MutantOutcome]:
        return [o for o in self.outcomes if o.status is MutantStatus.SURVIVED]

    def seconds_per_mutant(self) -> float:
        """Mean build plus check time of the mutants that were built."""
        built = [o for o in self.outcomes if o.status is not MutantStatus.NOT_BUILT]
        return sum(o.build_s + o.check_s for o in built) / len(built) if built else 0.0

    def summary(self) -> str:
        counts = ", ".join(f"{self.number(s)} {s.value}" for s in MutantStatus)
        score = f"score {self.score:.0%}" if self.score is not None else "no score (no mutant was built and booted)"
        return (
            f"{len(self.outcomes)} mutants of {self.source} (seed {self.seed}): {counts}; {score}; "
            f"{self.seconds_per_mutant():.0f} s per built mutant, {self.elapsed_s:.0f} s in all"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "seed": self.seed,
            "count_per_file": self.count,
            "summary": {s.value: self.number(s) for s in MutantStatus},
            "score": self.score,
            "seconds_per_mutant": round(self.seconds_per_mutant(), 1),
            "baseline_build_s": round(self.baseline_build_s, 1),
            "elapsed_s": round(self.elapsed_s, 1),
            "baseline": self.baseline.to_dict(),
            "mutants": [o.to_dict() for o in self.outcomes],
        }


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def mutation_table(report: MutationReport, *, width: int = 120) -> str:
    """One row per mutant (where, operator, outcome, what killed it), the survivors' lines, the summary."""
    rows: list[Sequence[str]] = []
    for o in report.outcomes:
        m = o.mutant
        what = ", ".join(o.killed_by[:2]) + (f" +{len(o.killed_by) - 2}" if len(o.killed_by) > 2 else "")
        rows.append(
            (
                f"{m.file}:{m.line}",
                m.operator,
                o.status.value,
                f"{o.build_s + o.check_s:.0f}",
                what or o.detail or f"{m.original.strip()} -> {m.mutated.strip()}",
            )
        )
    header = ("WHERE", "OPERATOR", "OUTCOME", "SECS", "KILLED BY / NOTE")
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) if rows else len(header[i]) for i in range(4)]
    last = max(width - sum(w + 2 for w in widths), 20)
    lines = [
        "  ".join([*(row[i].ljust(widths[i]) for i in range(4)), _clip(row[4], last)]).rstrip()
        for row in [header, *rows]
    ]
    survivors = report.survivors()
    if survivors:
        lines.append("")
        lines.append("No check observes these lines (each survived its mutant):")
        for o in survivors:
            m = o.mutant
            lines.append(_clip(f"  {m.file}:{m.line}: {m.original.strip()}  ->  {m.mutated.strip()}", width))
    lines.append(report.summary())
    return "\n".join(lines)
