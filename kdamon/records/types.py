"""What every record reader shares: the record's metadata and the reader protocol.

Readers yield the model's columnar :class:`~kdamon.model.snapshot.Snapshot`.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs

from kdamon.model.snapshot import Snapshot

__all__ = ["RecordMeta", "RecordSource", "group_by_target"]


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

    ``snapshots()`` (or iterating the source) streams the snapshots.
    ``truncated`` is True once a read has met an incomplete end (a recorder
    that was killed).  Each call to ``snapshots()`` starts again from the first snapshot (kdamon
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
    def snapshots(self) -> Iterator[Snapshot]:
        """Stream the snapshots."""

    def __iter__(self) -> Iterator[Snapshot]:
        return self.snapshots()


def group_by_target(snapshots: Iterable[Snapshot]) -> dict[tuple[int, int, int], list[Snapshot]]:
    """Snapshots per ``(kdamond_idx, context_idx, target_idx)``, in first-seen order."""
    groups: dict[tuple[int, int, int], list[Snapshot]] = {}
    for snapshot in snapshots:
        groups.setdefault(snapshot.target, []).append(snapshot)
    return groups
