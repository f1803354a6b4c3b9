"""The one snapshot type: a target's regions at one aggregation, held as columns.

Every producer (the tracefs reader, the engine, record readers of kdamon's
and the peer's formats) builds a :class:`Snapshot`, and every consumer
(records, reports, the live view, ``check``, the exporter) reads it.  Its
regions are one numpy structured array (``REGION_DTYPE``: start u64, end u64,
nr_accesses u32, age u32, packed little-endian, 24 bytes a region), so that
bulk work runs on columns instead of one Python object per region.

Loaded on first use through :mod:`kdamon.model` (numpy is not imported by
commands that never see a snapshot).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import attrs
import numpy as np
import numpy.typing as npt

from kdamon.model.results import RegionState

__all__ = ["REGION_DTYPE", "RegionArray", "Snapshot", "regions_array"]

REGION_DTYPE = np.dtype([("start", "<u8"), ("end", "<u8"), ("nr_accesses", "<u4"), ("age", "<u4")])
"""One region: ``[start, end)``, its access count and its age (aggregation intervals)."""

RegionArray = npt.NDArray[np.void]
"""A one-dimensional array of ``REGION_DTYPE``."""


def regions_array(
    starts: npt.ArrayLike,
    ends: npt.ArrayLike,
    nr_accesses: npt.ArrayLike,
    ages: npt.ArrayLike,
) -> RegionArray:
    """Build a region array from four equally long columns."""
    start_col = np.asarray(starts, dtype=np.uint64)
    regions: RegionArray = np.empty(start_col.shape[0], dtype=REGION_DTYPE)
    regions["start"] = start_col
    regions["end"] = ends
    regions["nr_accesses"] = nr_accesses
    regions["age"] = ages
    return regions


@attrs.frozen(eq=False, slots=True)
class Snapshot:
    """One target's regions at one aggregation boundary.

    ``regions`` is a ``REGION_DTYPE`` array in address order;
    ``sample_us``/``aggr_us`` are the intervals the kdamond used for it (0
    when the source does not say, e.g. ``perf script`` text).
    """

    time_ns: int
    kdamond_idx: int
    context_idx: int
    target_idx: int
    regions: RegionArray
    sample_us: int
    aggr_us: int

    @classmethod
    def of_rows(
        cls,
        time_ns: int,
        kdamond_idx: int,
        context_idx: int,
        target_idx: int,
        rows: Iterable[tuple[int, int, int, int] | RegionState],
        sample_us: int,
        aggr_us: int,
    ) -> Snapshot:
        """A snapshot from ``(start, end, nr_accesses, age)`` rows (or ``RegionState`` objects)."""
        data = [(r.start, r.end, r.nr_accesses, r.age) if isinstance(r, RegionState) else r for r in rows]
        regions: RegionArray = np.array(data, dtype=REGION_DTYPE)
        return cls(time_ns, kdamond_idx, context_idx, target_idx, regions, sample_us, aggr_us)

    @property
    def target(self) -> tuple[int, int, int]:
        """``(kdamond_idx, context_idx, target_idx)``: which target this is."""
        return (self.kdamond_idx, self.context_idx, self.target_idx)

    @property
    def nr_regions(self) -> int:
        return int(self.regions.shape[0])

    @property
    def sizes(self) -> npt.NDArray[np.uint64]:
        """Each region's size in bytes."""
        sizes: npt.NDArray[np.uint64] = self.regions["end"] - self.regions["start"]
        return sizes

    @property
    def total_size(self) -> int:
        """Bytes covered by the regions."""
        return int(self.sizes.sum())

    @property
    def max_nr_accesses(self) -> int:
        """The highest ``nr_accesses`` a region can reach in one aggregation; 0 when the intervals are unknown."""
        if self.sample_us <= 0:
            return 0
        return self.aggr_us // self.sample_us

    def rows(self) -> list[tuple[int, int, int, int]]:
        """``(start, end, nr_accesses, age)`` per region, as Python integers."""
        rows: list[tuple[int, int, int, int]] = self.regions.tolist()
        return rows

    def states(self) -> Iterator[RegionState]:
        """The regions as ``RegionState`` objects (for code that wants one object per region)."""
        return (RegionState(*row) for row in self.rows())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Snapshot):
            return NotImplemented
        return (
            (self.time_ns, self.target, self.sample_us, self.aggr_us)
            == (other.time_ns, other.target, other.sample_us, other.aggr_us)
            and self.regions.shape == other.regions.shape
            and bool((self.regions == other.regions).all())
        )

    __hash__ = None  # type: ignore[assignment]  # mutable contents: not hashable
