"""What every monitoring snapshot must satisfy, whoever produced it (kernel or engine).

These are the core's invariants (``damon-abi.md`` §9): regions are page
aligned, non-empty, sorted and disjoint; a region's ``nr_accesses`` is at
most ``aggr_us / sample_us``; the number of regions is at most ``max`` of
``nr_regions`` (quota and filter splits, which can exceed it transiently,
are avoided by the checks).  ``min`` is a soft bound: user-given regions
start below it and reach it by splitting, after which merging never takes
the count back under it (no merge goes past ``total size / min``), so it
is only checked once monitoring has settled (``settled=True``).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from kdamon.model import NrRegions
from kdamon.model.snapshot import RegionArray, Snapshot

__all__ = ["PAGE_SIZE", "area_mean_accesses", "snapshot_violations", "wss_bytes"]

PAGE_SIZE = 4096


def snapshot_violations(
    snapshot: Snapshot, nr_regions: NrRegions, *, settled: bool = True, page: int = PAGE_SIZE
) -> list[str]:
    """Every broken invariant of one snapshot, as sentences (empty when it is sound)."""
    problems: list[str] = []
    count = snapshot.nr_regions
    if not count:
        return ["the snapshot has no regions"]
    if count > nr_regions.max:
        problems.append(f"{count} regions, more than the maximum {nr_regions.max}")
    if settled and count < nr_regions.min:
        problems.append(f"{count} regions after settling, fewer than the minimum {nr_regions.min}")
    limit = snapshot.max_nr_accesses
    previous_end = None
    for start, end, nr_accesses, _age in snapshot.rows():
        where = f"region {start:#x}-{end:#x}"
        if start >= end:
            problems.append(f"{where} is empty or inverted")
        if start % page or end % page:
            problems.append(f"{where} is not page aligned")
        if previous_end is not None and start < previous_end:
            problems.append(f"{where} overlaps or precedes the region before it (ending at {previous_end:#x})")
        if nr_accesses > limit:
            problems.append(f"{where} has nr_accesses {nr_accesses} > aggr/sample = {limit}")
        previous_end = end
    return problems


def _overlaps(regions: RegionArray, start: int, end: int) -> npt.NDArray[np.int64]:
    """Bytes of each region inside ``[start, end)``."""
    low = np.maximum(regions["start"].astype(np.int64), start)
    high = np.minimum(regions["end"].astype(np.int64), end)
    overlaps: npt.NDArray[np.int64] = np.maximum(high - low, 0)
    return overlaps


def area_mean_accesses(regions: RegionArray, start: int, end: int) -> float:
    """The size-weighted mean ``nr_accesses`` over ``[start, end)`` (0 where no region covers it)."""
    total = float((regions["nr_accesses"] * _overlaps(regions, start, end)).sum())
    return total / max(end - start, 1)


def wss_bytes(regions: RegionArray, min_nr_accesses: int) -> int:
    """The working-set size estimate: bytes of regions with ``nr_accesses >= min_nr_accesses``."""
    hot = regions["nr_accesses"] >= min_nr_accesses
    return int((regions["end"][hot] - regions["start"][hot]).sum())
