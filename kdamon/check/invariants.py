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

from collections.abc import Iterable

from kdamon.model import NrRegions, RegionState, Snapshot

__all__ = ["PAGE_SIZE", "area_mean_accesses", "snapshot_violations", "wss_bytes"]

PAGE_SIZE = 4096


def snapshot_violations(
    snapshot: Snapshot, nr_regions: NrRegions, *, settled: bool = True, page: int = PAGE_SIZE
) -> list[str]:
    """Every broken invariant of one snapshot, as sentences (empty when it is sound)."""
    problems: list[str] = []
    regions = snapshot.regions
    if not regions:
        return ["the snapshot has no regions"]
    if len(regions) > nr_regions.max:
        problems.append(f"{len(regions)} regions, more than the maximum {nr_regions.max}")
    if settled and len(regions) < nr_regions.min:
        problems.append(f"{len(regions)} regions after settling, fewer than the minimum {nr_regions.min}")
    limit = snapshot.max_nr_accesses
    previous_end = None
    for r in regions:
        where = f"region {r.start:#x}-{r.end:#x}"
        if r.start >= r.end:
            problems.append(f"{where} is empty or inverted")
        if r.start % page or r.end % page:
            problems.append(f"{where} is not page aligned")
        if previous_end is not None and r.start < previous_end:
            problems.append(f"{where} overlaps or precedes the region before it (ending at {previous_end:#x})")
        if r.nr_accesses > limit:
            problems.append(f"{where} has nr_accesses {r.nr_accesses} > aggr/sample = {limit}")
        previous_end = r.end
    return problems


def _overlap(r: RegionState, start: int, end: int) -> int:
    return max(0, min(r.end, end) - max(r.start, start))


def area_mean_accesses(regions: Iterable[RegionState], start: int, end: int) -> float:
    """The size-weighted mean ``nr_accesses`` over ``[start, end)`` (0 where no region covers it)."""
    total = 0
    for r in regions:
        total += r.nr_accesses * _overlap(r, start, end)
    return total / max(end - start, 1)


def wss_bytes(regions: Iterable[RegionState], min_nr_accesses: int) -> int:
    """The working-set size estimate: bytes of regions with ``nr_accesses >= min_nr_accesses``."""
    return sum(r.end - r.start for r in regions if r.nr_accesses >= min_nr_accesses)
