"""The operations set a context asks for (the kernel's ``damon_select_ops()``)."""

from __future__ import annotations

from pathlib import Path

from kdamon.engine.ops.base import Operations
from kdamon.engine.ops.paddr import PaddrOps
from kdamon.engine.ops.probe import ProbeResult, probe
from kdamon.engine.ops.vaddr import VaddrOps
from kdamon.errors import EngineError
from kdamon.model.config import Context

__all__ = ["ops_for_context"]


def ops_for_context(context: Context, proc_root: Path = Path("/proc"), sys_root: Path = Path("/sys")) -> Operations:
    """The operations set for ``context.ops``, with the best check per target."""
    if context.ops == "paddr":
        return PaddrOps(proc_root, sys_root)
    results: list[ProbeResult] = []
    for index, target in enumerate(context.targets):
        if target.pid is None:
            raise EngineError(f"targets[{index}] has no pid: {context.ops} monitors processes")
        results.append(probe(target.pid, proc_root, sys_root))
    return VaddrOps(
        [result.kind for result in results],
        awaited=[result.awaited for result in results],
        fixed=context.ops == "fvaddr",
        proc_root=proc_root,
        sys_root=sys_root,
    )
