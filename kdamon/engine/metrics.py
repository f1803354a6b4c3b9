"""System metrics DAMOS reads: watermarks (§9.8) and quota goal values (§9.9).

:class:`ProcMetrics` reads them from procfs and sysfs under given roots, so
that tests can point it at a temporary tree; anything with the same methods
(a :class:`SystemMetrics`) can stand in for it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Protocol

from kdamon.errors import EngineError
from kdamon.model.config import Watermarks

__all__ = ["ProcMetrics", "SystemMetrics", "watermark_wait_us"]


class SystemMetrics(Protocol):
    """The system state that watermarks and quota goals compare against."""

    def free_mem_rate_permil(self) -> int:
        """Free memory per 1000 of total memory (``free_mem_rate``)."""
        ...

    def some_mem_psi_total_us(self) -> int:
        """Cumulative system-wide "some" memory stall time, in microseconds."""
        ...

    def node_mem_bp(self, nid: int, *, used: bool) -> int:
        """Used (or free) memory of NUMA node ``nid`` per 10000 of its total."""
        ...


def _meminfo_kib(path: Path, keys: tuple[str, ...]) -> dict[str, int]:
    try:
        text = path.read_text()
    except OSError as error:
        raise EngineError(
            f"cannot read {path} ({error.strerror}): the engine needs it for "
            "DAMOS watermarks and quota goals; remove those or mount procfs/sysfs"
        ) from error
    values: dict[str, int] = {}
    for key in keys:
        match = re.search(rf"\b{key}:\s+(\d+)\s*kB", text)
        if match is None:
            raise EngineError(
                f"{path} has no {key} line; this kernel's memory statistics are not what the engine expects"
            )
        values[key] = int(match.group(1))
    return values


class ProcMetrics:
    """Metrics read from ``/proc/meminfo``, ``/proc/pressure/memory`` and node meminfo."""

    def __init__(self, proc_root: Path = Path("/proc"), sys_root: Path = Path("/sys")) -> None:
        self.proc_root = proc_root
        self.sys_root = sys_root

    def free_mem_rate_permil(self) -> int:
        info = _meminfo_kib(self.proc_root / "meminfo", ("MemTotal", "MemFree"))
        return info["MemFree"] * 1000 // max(info["MemTotal"], 1)

    def some_mem_psi_total_us(self) -> int:
        path = self.proc_root / "pressure" / "memory"
        try:
            text = path.read_text()
        except OSError:
            return 0  # the kernel reads 0 without CONFIG_PSI too
        match = re.search(r"^some .*\btotal=(\d+)", text, re.MULTILINE)
        return int(match.group(1)) if match else 0

    def node_mem_bp(self, nid: int, *, used: bool) -> int:
        path = self.sys_root / "devices" / "system" / "node" / f"node{nid}" / "meminfo"
        info = _meminfo_kib(path, ("MemTotal", "MemFree"))
        part = info["MemTotal"] - info["MemFree"] if used else info["MemFree"]
        return part * 10000 // max(info["MemTotal"], 1)


def watermark_wait_us(wmarks: Watermarks, activated: bool, metrics: SystemMetrics) -> tuple[bool, int]:
    """``damos_wmark_wait_us()``: the scheme's new activation and how long to wait.

    A wait of 0 means the scheme is active now.
    """
    if wmarks.metric == "none":
        return True, 0
    value = metrics.free_mem_rate_permil()
    if value > wmarks.high or value < wmarks.low:
        return False, wmarks.interval_us
    if not activated and wmarks.mid <= value <= wmarks.high:
        return False, wmarks.interval_us
    return True, 0
