"""Physical memory layout, for paddr monitoring without explicit regions."""

from __future__ import annotations

from pathlib import Path

from kdamon.errors import ConfigError
from kdamon.model import Region

__all__ = ["largest_system_ram"]


def largest_system_ram(iomem: Path = Path("/proc/iomem")) -> Region:
    """The largest top-level ``System RAM`` range of ``/proc/iomem`` (what paddr monitors
    by default).  Only root sees real addresses there."""
    best: Region | None = None
    try:
        lines = iomem.read_text().splitlines()
    except OSError as error:
        raise ConfigError("--regions", f"cannot read {iomem} ({error.strerror}): give the "
                                       "physical address range with --regions START-END") from None
    for line in lines:
        if line.startswith(" ") or not line.rstrip().endswith(": System RAM"):
            continue
        start_text, _, end_text = line.split(" : ")[0].partition("-")
        start, end = int(start_text, 16), int(end_text, 16) + 1
        if end > start and (best is None or end - start > best.end - best.start):
            best = Region(start, end)
    if best is None or best.start == 0 and best.end == 1:
        raise ConfigError("--regions", f"{iomem} shows no System RAM range (it hides addresses from "
                                       "non-root users): run as root or give --regions START-END")
    return best
