"""Read kdamon record files as a stream of snapshots."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import attrs
import numpy as np

from kdamon.errors import RecordFormatError
from kdamon.model import IntervalsTune
from kdamon.model.snapshot import Snapshot
from kdamon.records.format import (
    KIND_APPLIES,
    KIND_SNAPSHOT,
    KIND_TARGET,
    KIND_TUNE,
    TARGETS_APPENDED,
    ChunkScanner,
    decode_applies,
    decode_snapshot,
    decode_target,
    decode_tune,
    read_header,
)
from kdamon.records.types import RecordMeta, RecordSource
from kdamon.userfiles import reading

__all__ = ["RecordReader", "read_records"]

_BUFFER_BYTES = 1 << 20


class RecordReader(RecordSource):
    """A kdamon record file.

    The header is read at construction (a file that is not a kdamon record
    raises ``RecordFormatError``); each iteration opens the file again and
    streams its snapshots, one chunk in memory at a time.  After an
    iteration, ``truncated`` tells whether the file ended in an incomplete
    chunk (which was ignored) and ``corrupted`` how many damaged chunks were
    skipped (only with ``skip_corrupt=True``; otherwise a damaged chunk in
    the middle of the file raises ``RecordFormatError``).
    """

    format_name = "kdamon"

    def __init__(self, path: str | Path, *, skip_corrupt: bool = False) -> None:
        super().__init__(path)
        self._skip_corrupt = skip_corrupt
        self.corrupted = 0
        with reading(self.path), open(self.path, "rb") as stream:
            self._meta, self.version, flags = read_header(stream, self.path)
            self._data_start = stream.tell()
        self._targets_pending = bool(flags & TARGETS_APPENDED)

    @property
    def meta(self) -> RecordMeta:
        """The metadata, with the targets added while recording (read from the file at the first call)."""
        if self._targets_pending:
            targets = list(self._meta.targets)
            for offset, payload in self._chunks(KIND_TARGET):
                index, target = decode_target(payload, self.path, offset)
                if index != len(targets):
                    raise RecordFormatError(
                        f"{self.path}: the target chunk at byte {offset} adds target "
                        f"{index} after {len(targets)} targets; the file is damaged"
                    )
                targets.append(target)
            self._meta = attrs.evolve(self._meta, targets=tuple(targets))
            self._targets_pending = False
        return self._meta

    def _chunks(self, wanted: int) -> Iterator[tuple[int, bytes]]:
        with reading(self.path), open(self.path, "rb", buffering=_BUFFER_BYTES) as stream:
            scanner = ChunkScanner(stream, self.path, self._data_start, skip_corrupt=self._skip_corrupt)
            try:
                for kind, offset, payload in scanner:
                    if kind == wanted:
                        yield offset, payload
            finally:
                self.truncated = scanner.truncated
                self.corrupted = scanner.corrupted

    def snapshots(self) -> Iterator[Snapshot]:
        for offset, payload in self._chunks(KIND_SNAPSHOT):
            yield decode_snapshot(payload, self.path, offset)

    def applies(self) -> Iterator[tuple[int, np.ndarray]]:
        """Each chunk of scheme applications: its kdamond index and its ``APPLY_DTYPE`` rows."""
        for offset, payload in self._chunks(KIND_APPLIES):
            yield decode_applies(payload, self.path, offset)

    def tunes(self) -> Iterator[IntervalsTune]:
        """The intervals tunes the record holds."""
        for offset, payload in self._chunks(KIND_TUNE):
            yield decode_tune(payload, self.path, offset)


def read_records(path: str | Path, *, skip_corrupt: bool = False) -> RecordReader:
    """Open a kdamon record file for reading (see ``RecordReader``)."""
    return RecordReader(path, skip_corrupt=skip_corrupt)
