"""Monitoring physical memory from user space through idle page tracking.

Like ``mm/damon/paddr.c``, the regions are the user-given physical ranges
(in ``addr_unit`` units) and never change; a target without regions gets
the biggest "System RAM" range of ``/proc/iomem`` (what damo and the DAMON
modules default to; the kernel's paddr would idle).  A sampled frame counts
as accessed when its folio is on an LRU list and no longer idle, as
``damon_pa_young()`` does (see :mod:`~kdamon.engine.ops.idle`).

DAMOS actions on physical memory cannot be performed from user space
(:attr:`PaddrOps.applied_actions` is empty): only ``stat`` schemes run,
the monitor refuses any other.  Needs root and a kernel with
``CONFIG_IDLE_PAGE_TRACKING``; without them :class:`PaddrOps` raises
:class:`EngineError` saying so.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from kdamon.engine.context import MonitorContext, TargetState
from kdamon.engine.ops import common
from kdamon.engine.ops.base import ScoreKind
from kdamon.engine.ops.common import Addresses, Seen
from kdamon.engine.ops.idle import IdleTracker
from kdamon.engine.regions import PAGE_SIZE
from kdamon.errors import EngineError
from kdamon.model.config import Scheme

__all__ = ["PaddrOps", "biggest_system_ram"]


def biggest_system_ram(proc_root: Path = Path("/proc")) -> tuple[int, int]:
    """The largest "System RAM" resource ``[start, end)`` of ``/proc/iomem``."""
    path = proc_root / "iomem"
    try:
        text = path.read_text()
    except OSError as error:
        raise EngineError(f"cannot read {path} ({error.strerror})") from error
    best = (0, 0)
    for match in re.finditer(r"^\s*([0-9a-f]+)-([0-9a-f]+) : System RAM$", text, re.MULTILINE):
        start, end = int(match.group(1), 16), int(match.group(2), 16) + 1
        if end - start > best[1] - best[0]:
            best = (start, end)
    if best[1] - best[0] <= PAGE_SIZE:
        raise EngineError(
            f"{path} shows no System RAM addresses (they read as zero without "
            "root): run as root or give the paddr target its regions"
        )
    return best


class PaddrOps:
    """Physical address space operations through idle page tracking."""

    name = "paddr/page_idle"
    capabilities = (
        "page_idle: sees reads and writes, per physical page frame, through "
        "/sys/kernel/mm/page_idle/bitmap and /proc/kpageflags (marking a frame "
        "idle clears its young bits in every mapping, kept for reclaim as DAMON "
        "does); needs root; applies no DAMOS action"
    )
    applied_actions: tuple[str, ...] = ()

    def __init__(self, proc_root: Path = Path("/proc"), sys_root: Path = Path("/sys")) -> None:
        self.proc_root = proc_root
        self._tracker = IdleTracker(proc_root, sys_root)

    def _pfn(self, ctx: MonitorContext, addr: int) -> int:
        return addr * ctx.config.addr_unit // PAGE_SIZE

    # -- the seven primitives --------------------------------------------------

    def init(self, ctx: MonitorContext) -> None:
        for target in ctx.targets:
            if not len(target.regions):
                start, end = biggest_system_ram(self.proc_root)
                unit = ctx.config.addr_unit
                target.regions.set_ranges([(start // unit, end // unit)], ctx.min_region)

    def update(self, ctx: MonitorContext) -> None:
        """Physical regions never change."""

    def prepare_access_checks(self, ctx: MonitorContext) -> None:
        def mark(_target: TargetState, addrs: Addresses) -> None:
            for addr in addrs.tolist():
                self._tracker.mark(self._pfn(ctx, addr))

        common.prepare_access_checks(ctx, mark)

    def check_accesses(self, ctx: MonitorContext) -> int:
        def seen(_target: TargetState, addrs: Addresses) -> Seen:
            return np.array([self._tracker.accessed(self._pfn(ctx, a)) for a in addrs.tolist()], dtype=np.bool_)

        return common.check_accesses(ctx, seen)

    def reset_aggregated(self, ctx: MonitorContext) -> None:
        """Nothing to do at aggregation boundaries."""

    def target_valid(self, target: TargetState) -> bool:
        """Physical memory never goes away (the kernel's paddr has no target_valid)."""
        return True

    def cleanup(self, ctx: MonitorContext) -> None:
        self._tracker.close()

    # -- DAMOS -----------------------------------------------------------------

    def apply_scheme(self, ctx: MonitorContext, target: TargetState, start: int, end: int, scheme: Scheme) -> int:
        """Only ``stat`` schemes reach here, and they apply nothing."""
        return 0

    def score_kind(self, action: str) -> ScoreKind:
        return common.score_kind(common.PHYSICAL_SCORES, action)
