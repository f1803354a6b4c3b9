"""The regions of one monitoring target and the operations DAMON does on them.

Follows ``mm/damon/core.c`` and ``mm/damon/vaddr.c`` of Linux 6.12
(the project's DAMON ABI notes, ``damon-abi.md`` §9): one sampling address per region per
sampling interval, ``nr_accesses`` with the 6.7+ moving sum
``nr_accesses_bp``, merge of adjacent similar regions (§9.6), age (§9.7),
random 2- or 3-way split (§9.11), ``damon_set_regions()`` and the vaddr
"three biggest gaps" initial regions (§9.2).

Regions are kept as parallel ``int64`` numpy arrays, so that sampling and
counting cost a few vector operations whatever the number or size of the
regions; the rarer structural changes (merge, set) run on plain lists.

Deliberate differences from the kernel:

* sampling addresses are uniform over the whole region, also above 4 GiB
  (6.12's ``damon_rand()`` truncates spans to 32 bits; 7.2+ does not);
* the moving sum never wraps below zero (the kernel's is unsigned) and is
  re-synchronised to ``nr_accesses * 10000`` at every reset, as 6.8+ does
  after warning.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from kdamon.model.snapshot import RegionArray, regions_array

__all__ = [
    "PAGE_SIZE",
    "RegionList",
    "align_down",
    "align_up",
    "evenly_split",
    "three_regions",
]

PAGE_SIZE = 4096
"""``DAMON_MIN_REGION`` on x86-64: the smallest region and the alignment of region bounds."""

Array = npt.NDArray[np.int64]
Range = tuple[int, int]
_Row = list[int]  # start, end, nr_accesses, nr_accesses_bp, last_nr_accesses, age


def align_down(value: int, unit: int) -> int:
    return value - value % unit


def align_up(value: int, unit: int) -> int:
    return align_down(value + unit - 1, unit)


def _column(values: Iterable[int] | None, size: int) -> Array:
    if values is None:
        return np.zeros(size, dtype=np.int64)
    return np.fromiter(values, dtype=np.int64, count=size)


class RegionList:
    """Address-ordered, disjoint regions ``[start, end)`` of one target."""

    __slots__ = ("age", "end", "last_nr_accesses", "nr_accesses", "nr_accesses_bp", "sampling_addr", "start")

    def __init__(self, rows: Sequence[Sequence[int]] = ()) -> None:
        """Build from rows ``(start, end[, nr_accesses, nr_accesses_bp, last, age])``."""
        size = len(rows)
        full = [tuple(row) + (0,) * (6 - len(row)) for row in rows]
        self.start: Array = _column((r[0] for r in full), size)
        self.end: Array = _column((r[1] for r in full), size)
        self.nr_accesses: Array = _column((r[2] for r in full), size)
        self.nr_accesses_bp: Array = _column((r[3] for r in full), size)
        self.last_nr_accesses: Array = _column((r[4] for r in full), size)
        self.age: Array = _column((r[5] for r in full), size)
        self.sampling_addr: Array = self.start.copy()

    @classmethod
    def from_ranges(cls, ranges: Iterable[Range]) -> RegionList:
        """Fresh regions (all counters zero) for the given sorted ranges."""
        return cls([(start, end) for start, end in ranges])

    # -- reading -------------------------------------------------------------

    def __len__(self) -> int:
        return int(self.start.shape[0])

    @property
    def sizes(self) -> Array:
        return self.end - self.start

    def total_size(self) -> int:
        return int(self.sizes.sum())

    def ranges(self) -> list[Range]:
        return list(zip(self.start.tolist(), self.end.tolist(), strict=True))

    def rows(self) -> list[_Row]:
        columns = (self.start, self.end, self.nr_accesses, self.nr_accesses_bp, self.last_nr_accesses, self.age)
        return [list(row) for row in zip(*(c.tolist() for c in columns), strict=True)]

    def as_array(self) -> RegionArray:
        """The regions as a snapshot's region array (``nr_accesses`` is the raw count)."""
        return regions_array(self.start, self.end, self.nr_accesses, self.age)

    def max_nr_accesses(self) -> int:
        return int(self.nr_accesses.max()) if len(self) else 0

    # -- sampling (every sampling interval) ------------------------------------

    def pick_sampling_addrs(self, rng: np.random.Generator) -> Array:
        """Choose one uniformly random address in every region (``damon_rand()``)."""
        if len(self):
            self.sampling_addr = rng.integers(self.start, self.end, dtype=np.int64)
        return self.sampling_addr

    def record_accesses(self, accessed: npt.NDArray[np.bool_], len_window: int) -> None:
        """``damon_update_region_access_rate()`` for every region at once."""
        hits = accessed.astype(np.int64)
        self.nr_accesses_bp -= self.last_nr_accesses * 10000 // max(len_window, 1)
        self.nr_accesses_bp += hits * 10000
        np.maximum(self.nr_accesses_bp, 0, out=self.nr_accesses_bp)
        self.nr_accesses += hits

    def reset_aggregated(self) -> None:
        """End of an aggregation: remember the count and start a new one."""
        self.nr_accesses_bp = self.nr_accesses * 10000
        self.last_nr_accesses = self.nr_accesses
        self.nr_accesses = np.zeros_like(self.nr_accesses)

    # -- structure -------------------------------------------------------------

    def _replace_rows(self, rows: Sequence[Sequence[int]]) -> None:
        fresh = RegionList(rows)
        for name in RegionList.__slots__:
            setattr(self, name, getattr(fresh, name))

    def update_ages(self, threshold: int) -> None:
        """Age +1 where the count stayed within ``threshold`` of the last one, else 0."""
        changed = np.abs(self.nr_accesses - self.last_nr_accesses) > threshold
        self.age = np.where(changed, 0, self.age + 1)

    def merge(self, threshold: int, sz_limit: int) -> None:
        """One ``damon_merge_regions_of()`` pass (without the age update)."""
        if len(self) < 2:
            return
        merged: list[_Row] = []
        for row in self.rows():
            if merged:
                prev = merged[-1]
                size_prev, size_row = prev[1] - prev[0], row[1] - row[0]
                if prev[1] == row[0] and abs(prev[2] - row[2]) <= threshold and size_prev + size_row <= sz_limit:
                    total = size_prev + size_row
                    prev[2] = (prev[2] * size_prev + row[2] * size_row) // total
                    prev[3] = prev[2] * 10000
                    prev[5] = (prev[5] * size_prev + row[5] * size_row) // total
                    prev[1] = row[1]
                    continue
            merged.append(row)
        if len(merged) != len(self):
            self._replace_rows(merged)

    def split(self, nr_subs: int, rng: np.random.Generator, min_region: int) -> None:
        """``damon_split_regions_of()``: cut each region into up to ``nr_subs`` pieces.

        The left piece is 10-90 % of the current size (aligned down to
        ``min_region``); further cuts go into the left piece again.
        """
        count = len(self)
        if nr_subs < 2 or not count:
            return
        current = self.sizes
        cut_addrs: list[Array] = []
        cut_owners: list[npt.NDArray[np.intp]] = []
        for _ in range(nr_subs - 1):
            tenths = rng.integers(1, 10, size=count, dtype=np.int64)
            left = tenths * current // 10 // min_region * min_region
            ok = (current > 2 * min_region) & (left > 0) & (left < current)
            owners = np.flatnonzero(ok)
            cut_owners.append(owners)
            cut_addrs.append(self.start[owners] + left[owners])
            current = np.where(ok, left, current)
        starts = np.concatenate([self.start, *cut_addrs])
        owners_all = np.concatenate([np.arange(count), *cut_owners])
        if starts.shape[0] == count:
            return
        order = np.argsort(starts, kind="stable")
        new_start, owner = starts[order], owners_all[order]
        new_end = self.end[owner]
        same_owner_next = owner[1:] == owner[:-1]
        new_end[:-1] = np.where(same_owner_next, new_start[1:], new_end[:-1])
        self.start, self.end = new_start, new_end
        self.nr_accesses = self.nr_accesses[owner]
        self.nr_accesses_bp = self.nr_accesses_bp[owner]
        self.last_nr_accesses = self.last_nr_accesses[owner]
        self.age = self.age[owner]
        self.sampling_addr = self.sampling_addr[owner]

    def split_at(self, index: int, size: int) -> None:
        """``damon_split_region_at()``: region ``index`` keeps ``size`` bytes; the rest
        becomes a new region right after it with copied counters."""
        cut = int(self.start[index]) + size
        for name in ("start", "end", "nr_accesses", "nr_accesses_bp", "last_nr_accesses", "age", "sampling_addr"):
            column: Array = getattr(self, name)
            setattr(self, name, np.insert(column, index + 1, column[index]))
        self.end[index] = cut
        self.start[index + 1] = cut

    def set_ranges(self, ranges: Sequence[Range], min_region: int) -> None:
        """``damon_set_regions()``: fit the regions to ``ranges`` (sorted, disjoint).

        Regions touching no range go; in each range the first and last
        intersecting regions are stretched to its (aligned) bounds and holes
        are filled with fresh regions; a range without regions gets one.
        Counters of kept regions are preserved.
        """

        def intersects(row: _Row, rng_: Range) -> bool:
            return row[0] < rng_[1] and rng_[0] < row[1]

        rows = [row for row in self.rows() if any(intersects(row, r) for r in ranges)]
        for rng_ in ranges:
            lo, hi = align_down(rng_[0], min_region), align_up(rng_[1], min_region)
            hits = [i for i, row in enumerate(rows) if intersects(row, rng_)]
            if not hits:
                position = sum(1 for row in rows if row[0] < lo)
                rows.insert(position, [lo, hi, 0, 0, 0, 0])
                continue
            first, last = hits[0], hits[-1]
            rows[first][0] = lo
            rows[last][1] = hi
            filled: list[_Row] = []
            for row in rows[first : last + 1]:
                if filled and filled[-1][1] < row[0]:
                    filled.append([filled[-1][1], row[0], 0, 0, 0, 0])
                filled.append(row)
            rows[first : last + 1] = filled
        self._replace_rows(rows)


def evenly_split(ranges: Sequence[Range], min_nr_regions: int, min_region: int) -> list[Range]:
    """6.12 ``__damon_va_init_regions()``: cut ranges into pieces of about
    ``total / min_nr_regions`` bytes (a range smaller than that stays whole;
    the last piece of a range absorbs the remainder)."""
    total = sum(end - start for start, end in ranges)
    piece_goal = max(total // max(min_nr_regions, 1), min_region)
    pieces: list[Range] = []
    for start, end in ranges:
        nr_pieces = (end - start) // piece_goal
        piece = align_down((end - start) // nr_pieces, min_region) if nr_pieces else 0
        if nr_pieces <= 1 or not piece:
            pieces.append((start, end))
            continue
        bounds = [start + i * piece for i in range(nr_pieces)] + [end]
        pieces.extend(zip(bounds[:-1], bounds[1:], strict=True))
    return pieces


def three_regions(mappings: Sequence[Range], min_region: int = PAGE_SIZE) -> list[Range] | None:
    """``__damon_va_three_regions()``: the mapped span cut at its two biggest gaps.

    ``mappings`` are the VMAs ``[start, end)`` in address order.  Returns
    None when there are fewer than two gaps (the kernel then gives the
    target no regions).  An earlier gap wins a tie.
    """
    if not mappings:
        return None
    first_gap: Range = (0, 0)
    second_gap: Range = (0, 0)
    for (_, prev_end), (start, _) in zip(mappings, mappings[1:], strict=False):
        gap = start - prev_end
        if gap > first_gap[1] - first_gap[0]:
            second_gap, first_gap = first_gap, (prev_end, start)
        elif gap > second_gap[1] - second_gap[0]:
            second_gap = (prev_end, start)
    if first_gap[1] == first_gap[0] or second_gap[1] == second_gap[0]:
        return None
    low, high = sorted((first_gap, second_gap))
    bounds = (mappings[0][0], low[0], low[1], high[0], high[1], mappings[-1][1])
    up = [align_up(b, min_region) for b in bounds]
    return [(up[0], up[1]), (up[2], up[3]), (up[4], up[5])]
