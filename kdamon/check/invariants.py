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

from kdamon.model import AccessPattern, NrRegions
from kdamon.model.snapshot import RegionArray, Snapshot

__all__ = [
    "PAGE_SIZE",
    "Row",
    "area_mean_accesses",
    "area_mean_age",
    "idle_share",
    "matching",
    "rows",
    "runs",
    "snapshot_violations",
    "split_growth_limit",
    "sz_limit",
    "three_regions",
    "unmerged_neighbours",
    "wss_bytes",
]

PAGE_SIZE = 4096


def snapshot_violations(
    snapshot: Snapshot, nr_regions: NrRegions, *, settled: bool = True, page: int = PAGE_SIZE, extra_samples: int = 0
) -> list[str]:
    """Every broken invariant of one snapshot, as sentences (empty when it is sound).  ``extra_samples``:
    how many samples more than aggr/sample an aggregation may hold (see ``test_kernel_snapshots_sound``)."""
    problems: list[str] = []
    count = snapshot.nr_regions
    if not count:
        return ["the snapshot has no regions"]
    if count > nr_regions.max:
        problems.append(f"{count} regions, more than the maximum {nr_regions.max}")
    if settled and count < nr_regions.min:
        problems.append(f"{count} regions after settling, fewer than the minimum {nr_regions.min}")
    limit = snapshot.max_nr_accesses + extra_samples
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
            problems.append(
                f"{where} has nr_accesses {nr_accesses} > aggr/sample{f' + {extra_samples}' if extra_samples else ''} "
                f"= {limit}"
            )
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


Row = tuple[int, int, int, int]
"""``(start, end, nr_accesses, age)`` of one region."""


def rows(snapshot: Snapshot) -> list[Row]:
    """The snapshot's regions as plain tuples, in address order (the behaviour checks read only these)."""
    return snapshot.rows()


def area_mean_age(snapshot: Snapshot, start: int, end: int, *, idle_only: bool = False) -> float | None:
    """The size-weighted mean age over the part of ``[start, end)`` the regions cover (None: none of it).

    ``idle_only`` counts only regions with no access in the aggregation.
    """
    total = weight = 0
    for row in rows(snapshot):
        if idle_only and row[2]:
            continue
        overlap = max(0, min(row[1], end) - max(row[0], start))
        total += row[3] * overlap
        weight += overlap
    return total / weight if weight else None


def idle_share(snapshot: Snapshot, start: int, end: int) -> float:
    """The share of ``[start, end)`` covered by regions with no access in the aggregation."""
    idle = sum(max(0, min(row[1], end) - max(row[0], start)) for row in rows(snapshot) if row[2] == 0)
    return idle / max(end - start, 1)


def runs(snapshot: Snapshot) -> list[tuple[int, int]]:
    """The contiguous extents the regions cover: ``[start, end)`` of each run of touching regions."""
    out: list[tuple[int, int]] = []
    for start, end, _, _ in rows(snapshot):
        if out and out[-1][1] == start:
            out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def sz_limit(total_bytes: int, nr_regions: NrRegions, page: int = PAGE_SIZE) -> int:
    """The merge size limit of core.c: the monitored bytes over ``min`` regions, at least a page."""
    return max(total_bytes // max(nr_regions.min, 1), page)


def unmerged_neighbours(snapshot: Snapshot, limit: int, start: int, end: int) -> list[str]:
    """Touching regions inside ``[start, end)`` with the same ``nr_accesses`` that would fit ``limit`` together.

    After the kernel's merge pass no two such neighbours remain: the merge
    joins touching regions whose ``nr_accesses`` differ by at most the
    threshold while their sizes sum to at most the limit.
    """
    inside = [r for r in rows(snapshot) if r[0] >= start and r[1] <= end]
    return [
        f"{a[0]:#x}-{a[1]:#x} and {b[0]:#x}-{b[1]:#x} (nr_accesses {a[2]}, {(b[1] - a[0]) >> 10} KiB together)"
        for a, b in zip(inside, inside[1:], strict=False)
        if a[1] == b[0] and a[2] == b[2] and b[1] - a[0] <= limit
    ]


def split_growth_limit(count: int, maximum: int, version: tuple[int, int]) -> int:
    """The most regions the split after a snapshot of ``count`` regions can add (``damon-abi.md`` 9.11).

    At most max/2 regions: each in two, or in three below max/3 (when the
    count did not change, which this bound does not need to know).  Above
    max/2: none before 7.0; from 7.0 every ``max/(max - count)``-th region,
    none at ``max``.
    """
    if count <= maximum // 2:
        return count if count >= maximum // 3 else 2 * count
    if version < (7, 0) or count >= maximum:
        return 0
    every = maximum // (maximum - count)
    return -(-count // every)


def matching(snapshot: Snapshot, pattern: AccessPattern) -> tuple[int, int]:
    """``(regions, bytes)`` of the snapshot that a scheme with ``pattern`` acts on (closed ranges)."""
    hits = [
        r
        for r in rows(snapshot)
        if pattern.sz_min <= r[1] - r[0] <= pattern.sz_max
        and pattern.nr_accesses_min <= r[2] <= pattern.nr_accesses_max
        and pattern.age_min <= r[3] <= pattern.age_max
    ]
    return len(hits), sum(r[1] - r[0] for r in hits)


def three_regions(maps: str) -> list[tuple[int, int]]:
    """The initial regions vaddr gives a process: its mappings' span less the two biggest gaps between them.

    ``maps`` is ``/proc/PID/maps``; ``[vsyscall]`` is no mapping of the
    process's mm and is left out.  Of equal gaps the lower one counts as the
    bigger, as the kernel scans in address order and keeps only strictly
    bigger ones.
    """
    vmas = []
    for line in maps.splitlines():
        fields = line.split()
        if fields and not line.rstrip().endswith("[vsyscall]"):
            start, end = (int(x, 16) for x in fields[0].split("-"))
            vmas.append((start, end))
    if len(vmas) < 3:
        raise ValueError(f"{len(vmas)} mappings: vaddr needs three to find two gaps")
    first = second = (0, 0)
    for (_, prev_end), (start, _) in zip(vmas, vmas[1:], strict=False):
        gap = (prev_end, start)
        if start - prev_end > first[1] - first[0]:
            first, second = gap, first
        elif start - prev_end > second[1] - second[0]:
            second = gap
    low, high = sorted((first, second))
    return [(vmas[0][0], low[0]), (low[1], high[0]), (high[1], vmas[-1][1])]
