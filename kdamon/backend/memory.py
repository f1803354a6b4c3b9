"""Physical memory layout, for paddr monitoring without explicit regions."""

from __future__ import annotations

import os
from pathlib import Path

from kdamon.errors import ConfigError
from kdamon.model import Region

__all__ = ["largest_system_ram", "node_ranges"]


def largest_system_ram(iomem: Path = Path("/proc/iomem")) -> Region:
    """The largest top-level ``System RAM`` range of ``/proc/iomem`` (what paddr monitors
    by default).  Only root sees real addresses there."""
    best: Region | None = None
    try:
        lines = iomem.read_text().splitlines()
    except OSError as error:
        raise ConfigError(
            "--regions",
            f"cannot read {iomem} ({error.strerror}): give the physical address range with --regions START-END",
        ) from None
    for line in lines:
        if line.startswith(" ") or not line.rstrip().endswith(": System RAM"):
            continue
        start_text, _, end_text = line.split(" : ")[0].partition("-")
        start, end = int(start_text, 16), int(end_text, 16) + 1
        if end > start and (best is None or end - start > best.end - best.start):
            best = Region(start, end)
    if best is None or best.start == 0 and best.end == 1:
        raise ConfigError(
            "--regions",
            f"{iomem} shows no System RAM range (it hides addresses from "
            "non-root users): run as root or give --regions START-END",
        )
    return best


def node_ranges(node: int, system: Path = Path("/sys/devices/system")) -> tuple[Region, ...]:
    """The physical address ranges of NUMA node ``node``'s memory: its online memory blocks
    (``node/nodeN/memoryM``, each ``memory/block_size_bytes`` long), neighbours joined."""
    node_dir = system / "node" / f"node{node}"
    try:
        block = int((system / "memory" / "block_size_bytes").read_text().strip(), 16)
        blocks = sorted(
            int(name[len("memory") :])
            for name in os.listdir(node_dir)
            if name.startswith("memory") and name[len("memory") :].isdigit()
        )
    except FileNotFoundError:
        raise ConfigError(
            "--numa-node", f"there is no NUMA node {node} with memory here ({node_dir}); see {system / 'node'}"
        ) from None
    except (OSError, ValueError) as error:
        raise ConfigError("--numa-node", f"cannot read node {node}'s memory blocks: {error}") from None
    online = []
    for index in blocks:
        state = system / "memory" / f"memory{index}" / "state"
        if not state.exists() or state.read_text().strip() == "online":
            online.append(index)
    if not online:
        raise ConfigError("--numa-node", f"NUMA node {node} has no online memory")
    ranges: list[list[int]] = []
    for index in online:
        start = index * block
        if ranges and ranges[-1][1] == start:
            ranges[-1][1] = start + block
        else:
            ranges.append([start, start + block])
    return tuple(Region(start, end) for start, end in ranges)
