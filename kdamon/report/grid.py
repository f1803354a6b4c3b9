"""Rasterise snapshots into a time x address grid of access intensity.

The address axis is compacted: only the monitored address ranges (the union
of every snapshot's regions) are kept, laid end to end, so that the huge
unmonitored gaps of a virtual address space (between heap, mmap area and
stack) take no room.  Each cell holds the size-weighted mean of
``nr_accesses / max_nr_accesses`` over the part of the address axis it
covers, averaged over the snapshots that fall in its time bin.  A snapshot's
access pattern holds until the next one, so a time bin no snapshot fell in
(snapshots come at irregular times under load) shows the latest snapshot
before it.  The time axis runs from the first snapshot to the last.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np
import numpy.typing as npt

from kdamon.errors import ConfigError
from kdamon.model.snapshot import Snapshot

__all__ = ["AddressAreas", "HeatGrid", "heat_grid"]

FloatArray = npt.NDArray[np.float64]
U64Array = npt.NDArray[np.uint64]


@attrs.frozen(eq=False)
class AddressAreas:
    """Disjoint monitored address ranges ``[starts[i], ends[i])``, in address order.

    ``offsets[i]`` is where area ``i`` begins on the compacted axis, whose
    length is ``total`` bytes.
    """

    starts: U64Array
    ends: U64Array
    offsets: U64Array
    total: int

    @classmethod
    def covering(cls, snapshots: Sequence[Snapshot]) -> AddressAreas:
        """The union of all regions of ``snapshots``."""
        starts = np.concatenate([s.regions["start"] for s in snapshots])
        ends = np.concatenate([s.regions["end"] for s in snapshots])
        order = np.argsort(starts, kind="stable")
        starts, ends = starts[order], ends[order]
        reach = np.maximum.accumulate(ends)
        new_area = np.flatnonzero(starts[1:] > reach[:-1]) + 1
        first = np.concatenate(([0], new_area))
        last = np.concatenate((new_area - 1, [starts.size - 1]))
        area_starts, area_ends = starts[first], reach[last]
        sizes = area_ends - area_starts
        offsets = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.uint64)
        return cls(area_starts, area_ends, offsets, int(sizes.sum()))

    def compact(self, addresses: U64Array) -> U64Array:
        """Positions of monitored ``addresses`` on the compacted axis."""
        area = np.searchsorted(self.starts, addresses, side="right") - 1
        compacted: U64Array = self.offsets[area] + (addresses - self.starts[area])
        return compacted

    def address_at(self, position: float) -> int:
        """The address at ``position`` (bytes) of the compacted axis."""
        position = min(max(position, 0.0), float(self.total))
        area = max(int(np.searchsorted(self.offsets, position, side="right")) - 1, 0)
        return int(self.starts[area]) + int(position - float(self.offsets[area]))


@attrs.frozen(eq=False)
class HeatGrid:
    """Access intensity per (time bin, address bin), in ``[0, 1]``."""

    values: FloatArray
    time_edges_ns: npt.NDArray[np.int64]
    areas: AddressAreas
    target: tuple[int, int, int]
    nr_snapshots: int
    max_nr_accesses: int

    @property
    def addr_edges(self) -> FloatArray:
        """Bin edges on the compacted address axis (bytes)."""
        edges: FloatArray = np.linspace(0.0, float(self.areas.total), self.values.shape[1] + 1)
        return edges


def _normaliser(snapshots: Sequence[Snapshot]) -> int:
    declared = max(s.max_nr_accesses for s in snapshots)
    if declared > 0:
        return declared
    seen = max(int(s.regions["nr_accesses"].max(initial=0)) for s in snapshots)
    return max(seen, 1)


def _row_of(snapshot: Snapshot, areas: AddressAreas, edges: FloatArray, normaliser: int) -> FloatArray:
    """Mean intensity of one snapshot in each address bin."""
    regions = snapshot.regions
    if regions.size == 0:
        return np.zeros(edges.size - 1)
    if regions.size > 1 and (np.diff(regions["start"].astype(np.float64)) < 0).any():
        regions = np.sort(regions, order="start")
    starts = areas.compact(regions["start"]).astype(np.float64)
    sizes = (regions["end"] - regions["start"]).astype(np.float64)
    weight = np.minimum(regions["nr_accesses"] / normaliser, 1.0) * sizes
    cumulative = np.cumsum(weight)
    # piecewise linear integral of the intensity: flat between regions, rising across each
    knots = np.empty(2 * starts.size)
    knots[0::2], knots[1::2] = starts, starts + sizes
    integral = np.empty(2 * starts.size)
    integral[0::2], integral[1::2] = cumulative - weight, cumulative
    at_edges = np.interp(edges, knots, integral)
    row: FloatArray = np.diff(at_edges) / np.diff(edges)
    return row


def heat_grid(
    snapshots: Sequence[Snapshot],
    *,
    time_bins: int,
    addr_bins: int,
    max_nr_accesses: int | None = None,
) -> HeatGrid:
    """Rasterise the snapshots of one target (all must share ``target``).

    ``max_nr_accesses`` normalises ``nr_accesses``; by default the
    snapshots' own (``aggr_us // sample_us``), or the highest count seen when
    the intervals are unknown.
    """
    if not snapshots:
        raise ConfigError("snapshots", "no snapshots to draw; check that the record holds the target asked for")
    if time_bins < 1 or addr_bins < 1:
        raise ConfigError("size", "the heatmap needs at least one time bin and one address bin")
    targets = {s.target for s in snapshots}
    if len(targets) > 1:
        raise ConfigError("target", f"snapshots of {len(targets)} targets given; draw one target at a time")
    if not any(s.regions.size for s in snapshots):
        raise ConfigError("snapshots", "the snapshots hold no regions, so there is nothing to draw")
    areas = AddressAreas.covering(snapshots)
    normaliser = max_nr_accesses if max_nr_accesses else _normaliser(snapshots)
    times = np.array([s.time_ns for s in snapshots], dtype=np.int64)
    first, last = int(times.min()), int(times.max())
    rows = min(time_bins, len(snapshots))
    span = max(last - first, 1)
    time_edges = first + (np.arange(rows + 1, dtype=np.float64) * span / rows).astype(np.int64)
    time_edges[-1] = last + 1
    row_index = np.minimum(((times - first) * rows) // span, rows - 1)
    edges = np.linspace(0.0, float(areas.total), addr_bins + 1)
    sums = np.zeros((rows, addr_bins))
    counts = np.zeros(rows)
    for snapshot, row in zip(snapshots, row_index.tolist(), strict=True):
        sums[row] += _row_of(snapshot, areas, edges, normaliser)
        counts[row] += 1
    # An empty bin shows the latest snapshot before it; the first snapshot is always in bin 0.
    by_time = np.argsort(times, kind="stable")
    empty = np.flatnonzero(counts == 0)
    latest = by_time[np.searchsorted(row_index[by_time], empty) - 1]
    for row, index in zip(empty.tolist(), latest.tolist(), strict=True):
        sums[row] = _row_of(snapshots[index], areas, edges, normaliser)
        counts[row] = 1
    values = sums / counts[:, None]
    return HeatGrid(
        values=values,
        time_edges_ns=time_edges,
        areas=areas,
        target=next(iter(targets)),
        nr_snapshots=len(snapshots),
        max_nr_accesses=normaliser,
    )
