"""Choosing how to watch a process: the best access check this host offers, and why.

:func:`probe` tries the checks best first (page_idle, uffd, soft_dirty,
smaps) and returns the first usable one with the reasons the others were
passed over, and the better ones that only wait for the process (see
:attr:`ProbeResult.awaited`).  The vaddr operations keep asking for the
awaited checks at each update, and probe again when a process replaced its
address space (exec).
"""

from __future__ import annotations

from pathlib import Path

import attrs

from kdamon.engine.ops.checks import (
    CHECK_DESCRIPTIONS,
    CHECK_KINDS,
    CheckKind,
    host_problem,
    process_problem,
)
from kdamon.errors import EngineError

__all__ = ["ProbeResult", "probe"]


@attrs.frozen
class ProbeResult:
    """The chosen check for a process and what the others lacked."""

    pid: int
    kind: CheckKind
    description: str
    rejected: tuple[tuple[CheckKind, str], ...]
    awaited: tuple[CheckKind, ...] = ()
    """Better kinds the host offers but the process does not allow yet (e.g.
    ``uffd`` before it registers memory), best first: the vaddr operations
    switch to one as soon as the process allows it."""

    def explain(self) -> str:
        lines = [f"process {self.pid}: {self.description}"]
        lines += [
            f"  not {kind}: {why}" + (" (asked again at each update)" if kind in self.awaited else "")
            for kind, why in self.rejected
        ]
        return "\n".join(lines)


def probe(pid: int, proc_root: Path = Path("/proc"), sys_root: Path = Path("/sys")) -> ProbeResult:
    """The best access check for process ``pid`` on this host now, and why."""
    if not (proc_root / str(pid)).exists():
        raise EngineError(f"process {pid} does not exist; give the pid of a running process")
    rejected: list[tuple[CheckKind, str]] = []
    awaited: list[CheckKind] = []
    for kind in CHECK_KINDS:
        problem = host_problem(kind, proc_root, sys_root)
        if problem is None:
            problem = process_problem(kind, pid, proc_root)
            if problem is None:
                return ProbeResult(pid, kind, CHECK_DESCRIPTIONS[kind], tuple(rejected), tuple(awaited))
            awaited.append(kind)
        rejected.append((kind, problem))
    raise EngineError(
        f"no way to watch process {pid} from user space: " + "; ".join(f"{kind}: {why}" for kind, why in rejected)
    )
