"""Physical memory as paddr monitoring regions, from ``/proc/iomem``.

``/proc/iomem`` lists resources as ``START-END : NAME`` (hexadecimal, END
inclusive), nested ones indented.  Hot-added memory appears as a new
"System RAM" range when it is added and disappears when it is removed.
Only root sees real addresses: for others every range reads ``0-0``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import attrs

from kdamon.errors import KernelError
from kdamon.model import Context, Kdamond, Region, Target

__all__ = ["IOMEM", "paddr_regions", "system_ram_ranges", "with_paddr_regions"]

IOMEM = Path("/proc/iomem")


def system_ram_ranges(iomem_text: str) -> list[tuple[int, int]]:
    """The ``[start, end)`` ranges named "System RAM" (also "System RAM (kmem)"), sorted.

    Raises KernelError when the addresses are hidden (read without root).
    """
    ranges = []
    hidden = False
    for line in iomem_text.splitlines():
        span, sep, name = line.strip().partition(" : ")
        if not sep or not name.startswith("System RAM"):
            continue
        first, _, last = span.partition("-")
        start, end = int(first, 16), int(last, 16) + 1
        if start == 0 and end == 1:
            hidden = True
            continue
        ranges.append((start, end))
    if hidden and not ranges:
        raise KernelError(
            "/proc/iomem shows no addresses to this user: read it as root "
            "(physical memory monitoring needs root anyway)",
            path=str(IOMEM),
        )
    return sorted(ranges)


def paddr_regions(ranges: Sequence[tuple[int, int]] | None = None, *, min_size: int = 1 << 20) -> tuple[Region, ...]:
    """Monitoring regions for the whole of physical memory: one per System RAM range.

    Adjacent ranges are joined; ranges smaller than ``min_size`` (the legacy
    low megabyte) are left out.  ``ranges`` defaults to the live
    ``/proc/iomem``.
    """
    if ranges is None:
        ranges = system_ram_ranges(IOMEM.read_text())
    joined: list[list[int]] = []
    for start, end in sorted(ranges):
        if joined and start <= joined[-1][1]:
            joined[-1][1] = max(joined[-1][1], end)
        else:
            joined.append([start, end])
    regions = tuple(Region(start, end) for start, end in joined if end - start >= min_size)
    if not regions:
        raise KernelError(
            f"no System RAM range of at least {min_size} bytes in /proc/iomem; give the regions explicitly"
        )
    return regions


def with_paddr_regions(kdamond: Kdamond, regions: Sequence[Region]) -> Kdamond:
    """``kdamond`` with the regions of its paddr contexts' (single) target replaced.

    What a follower commits to a kernel kdamond when memory comes or goes.
    """

    def update(context: Context) -> Context:
        if context.ops != "paddr":
            return context
        target = context.targets[0] if context.targets else Target()
        return attrs.evolve(context, targets=(attrs.evolve(target, regions=tuple(regions)),))

    return attrs.evolve(kdamond, contexts=tuple(update(c) for c in kdamond.contexts))
