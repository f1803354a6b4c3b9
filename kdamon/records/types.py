"""The columnar shape of record data, shared by every record reader and writer.

A snapshot's regions live in one numpy structured array (``REGION_DTYPE``:
start u64, end u64, nr_accesses u32, age u32, packed little-endian, 24 bytes a
region), so that readers, writers and reports work on columns instead of one
Python object per region.  ``SnapshotArrays.to_snapshot()`` turns it into the
model's ``Snapshot`` when objects are wanted.
"""

from __future__ import annotations

import abc
import itertools
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from kdamon.model import RegionState, Snapshot

__all__ = [
    "REGION_DTYPE",
    "RecordMeta",
    "RecordSource",
    "RegionArray",
    "SnapshotArrays",
    "group_by_target",
    "regions_array",
]

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


@attrs.frozen(eq=False)
class SnapshotArrays:
    """A ``Snapshot`` whose regions are a ``REGION_DTYPE`` array.

    Field order and meaning follow ``kdamon.model.Snapshot``.
    """

    time_ns: int
    kdamond_idx: int
    context_idx: int
    target_idx: int
    regions: RegionArray
    sample_us: int
    aggr_us: int

    @property
    def target(self) -> tuple[int, int, int]:
        """``(kdamond_idx, context_idx, target_idx)``: which target this is."""
        return (self.kdamond_idx, self.context_idx, self.target_idx)

    @property
    def max_nr_accesses(self) -> int:
        """The highest ``nr_accesses`` a region can reach; 0 when the intervals are unknown."""
        if self.sample_us <= 0:
            return 0
        return self.aggr_us // self.sample_us

    def to_snapshot(self) -> Snapshot:
        """The model object, with one ``RegionState`` per region."""
        regions = tuple(itertools.starmap(RegionState, self.regions.tolist()))
        return Snapshot(
            time_ns=self.time_ns,
            kdamond_idx=self.kdamond_idx,
            context_idx=self.context_idx,
            target_idx=self.target_idx,
            regions=regions,
            sample_us=self.sample_us,
            aggr_us=self.aggr_us,
        )

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot) -> SnapshotArrays:
        """The columnar form of a model ``Snapshot``."""
        rows = [(r.start, r.end, r.nr_accesses, r.age) for r in snapshot.regions]
        regions: RegionArray = np.array(rows, dtype=REGION_DTYPE)
        return cls(
            time_ns=snapshot.time_ns,
            kdamond_idx=snapshot.kdamond_idx,
            context_idx=snapshot.context_idx,
            target_idx=snapshot.target_idx,
            regions=regions,
            sample_us=snapshot.sample_us,
            aggr_us=snapshot.aggr_us,
        )


def _tuple_of_dicts(targets: Iterable[dict[str, Any]]) -> tuple[dict[str, Any], ...]:
    return tuple(targets)


@attrs.frozen
class RecordMeta:
    """What a record file says about itself.

    ``producer`` names what made the snapshots (``"sysfs"``, ``"tracefs"``,
    ``"engine"``, ``"damo-json"``, ...); ``sample_us``/``aggr_us`` are the
    intervals at the start of the recording (each snapshot carries its own);
    ``ops`` is the operations set (``"vaddr"``, ``"paddr"``, ...) and
    ``targets`` JSON-compatible descriptions of the monitored targets.
    """

    producer: str = "unknown"
    sample_us: int = 0
    aggr_us: int = 0
    ops: str = ""
    targets: tuple[dict[str, Any], ...] = attrs.field(default=(), converter=_tuple_of_dicts)


class RecordSource(abc.ABC):
    """A readable record: kdamon's own file or one of the peer's formats.

    ``arrays()`` streams ``SnapshotArrays`` (the fast path for reports);
    iterating the source yields model ``Snapshot`` objects.  ``truncated`` is
    True once a read has met an incomplete end (a recorder that was killed).
    Each call to ``arrays()`` starts again from the first snapshot (kdamon
    files and perf script text are streamed from the file again; damo's JSON
    is parsed once, when the reader is created).
    """

    format_name: str = ""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.truncated = False

    @property
    @abc.abstractmethod
    def meta(self) -> RecordMeta:
        """The record's metadata."""

    @abc.abstractmethod
    def arrays(self) -> Iterator[SnapshotArrays]:
        """Stream the snapshots in columnar form."""

    def __iter__(self) -> Iterator[Snapshot]:
        return (arrays.to_snapshot() for arrays in self.arrays())


def group_by_target(snapshots: Iterable[SnapshotArrays]) -> dict[tuple[int, int, int], list[SnapshotArrays]]:
    """Snapshots per ``(kdamond_idx, context_idx, target_idx)``, in first-seen order."""
    groups: dict[tuple[int, int, int], list[SnapshotArrays]] = {}
    for snapshot in snapshots:
        groups.setdefault(snapshot.target, []).append(snapshot)
    return groups
