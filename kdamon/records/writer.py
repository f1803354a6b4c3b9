"""Append snapshots to a kdamon record file."""

from __future__ import annotations

import os
import struct
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Self

import attrs

from kdamon.errors import ConfigError, RecordFormatError
from kdamon.model import IntervalsTune, SchemeApply
from kdamon.model.snapshot import Snapshot
from kdamon.records.format import (
    KIND_TARGET,
    TARGETS_APPENDED,
    ChunkScanner,
    applies_array,
    decode_target,
    encode_applies,
    encode_header,
    encode_snapshot,
    encode_target,
    encode_tune,
    read_header,
)
from kdamon.records.types import RecordMeta
from kdamon.userfiles import Replacement

__all__ = ["RecordWriter"]

_BUFFER_BYTES = 1 << 20


class RecordWriter:
    """Write a record file, one self-delimiting chunk per snapshot.

    Use it as a context manager::

        with RecordWriter(path, RecordMeta(producer="sysfs")) as writer:
            writer.append(snapshot)

    Flush policy: the buffered data reaches the file after every
    ``flush_every`` snapshots (1: after each one, so that a killed recorder
    loses at most the snapshot being written; 0: only when the buffer fills
    and on ``close()``); with ``fsync=True`` each flush also asks the kernel
    to put the data on disk.  ``append=True`` continues an existing file: its
    metadata is kept (``meta`` is then ignored) and an incomplete final
    chunk left by a killed recorder is cut off first.  With
    ``targets_appended=True`` the record's targets may grow while it is
    written (:meth:`append_target`); readers then add those to the metadata.

    A new record never truncates an existing file at ``path``: it is written
    beside it (see ``kdamon.userfiles``) and takes its place at the first
    flush that holds a snapshot, or at ``close()``.  ``discard()`` (and an
    exception out of the ``with`` block before any snapshot) leaves the file
    at ``path`` as it was.
    """

    def __init__(
        self,
        path: str | Path,
        meta: RecordMeta | None = None,
        *,
        flush_every: int = 1,
        fsync: bool = False,
        append: bool = False,
        targets_appended: bool = False,
    ) -> None:
        if flush_every < 0:
            raise ConfigError("flush_every", "must be 0 (flush on close only) or a positive number of snapshots")
        self.path = Path(path)
        self._flush_every = flush_every
        self._fsync = fsync
        self._pending = 0
        self.nr_snapshots = 0
        self.nr_applies = 0
        self._replacement: Replacement | None = None
        if append and self.path.exists() and self.path.stat().st_size > 0:
            self.meta, self._flags, self._stream = self._open_existing()
        else:
            self.meta = meta if meta is not None else RecordMeta()
            self._flags = TARGETS_APPENDED if targets_appended else 0
            self._replacement = Replacement(self.path, buffering=_BUFFER_BYTES)
            self._stream = self._replacement.stream
            self._stream.write(encode_header(self.meta, self._flags))
        self._nr_targets = len(self.meta.targets)

    def _open_existing(self) -> tuple[RecordMeta, int, BinaryIO]:
        stream = open(self.path, "r+b", buffering=_BUFFER_BYTES)
        try:
            meta, _, flags = read_header(stream, self.path)
            scanner = ChunkScanner(stream, self.path, stream.tell(), skip_corrupt=True)
            appended = [
                decode_target(payload, self.path, offset)[1] for kind, offset, payload in scanner if kind == KIND_TARGET
            ]
            stream.seek(scanner.end)
            stream.truncate()
        except BaseException:
            stream.close()
            raise
        return attrs.evolve(meta, targets=meta.targets + tuple(appended)), flags, stream

    @property
    def closed(self) -> bool:
        return self._stream.closed

    def _write(self, chunk: tuple[bytes, bytes | memoryview]) -> None:
        if self._stream.closed:
            raise RecordFormatError(f"{self.path}: the record writer is closed; open a new RecordWriter(append=True)")
        self._stream.write(chunk[0])
        self._stream.write(chunk[1])
        self._pending += 1
        if self._flush_every and self._pending >= self._flush_every:
            self.flush()

    def append(self, snapshot: Snapshot) -> None:
        """Write one snapshot."""
        try:
            chunk = encode_snapshot(snapshot)
        except struct.error as exc:
            raise RecordFormatError(
                f"{self.path}: snapshot at time_ns={snapshot.time_ns} has a field out of range for the record format ({exc}); "
                "indices must fit in 32 bits and time_ns in 63 bits"
            ) from exc
        self.nr_snapshots += 1  # before the write's flush: that flush puts a file with a snapshot in place
        self._write(chunk)

    def append_applies(self, kdamond_idx: int, applies: list[SchemeApply]) -> None:
        """Write scheme applications (``damos_before_apply`` events) of one kdamond, as one chunk."""
        if applies:
            self._write(encode_applies(kdamond_idx, applies_array(applies)))
            self.nr_applies += len(applies)

    def append_tune(self, tune: IntervalsTune) -> None:
        """Write an intervals tune."""
        self._write(encode_tune(tune))

    def append_target(self, target: dict[str, Any]) -> int:
        """Add a target to the record's metadata (JSON-compatible, like ``meta.targets``' entries);
        returns its index.  Needs a writer made with ``targets_appended=True``."""
        if not self._flags & TARGETS_APPENDED:
            raise RecordFormatError(
                f"{self.path}: this record's targets are fixed; open the RecordWriter "
                "with targets_appended=True to add targets while recording"
            )
        index = self._nr_targets
        self._write(encode_target(index, target))
        self._nr_targets += 1
        return index

    def flush(self) -> None:
        """Hand the buffered snapshots to the kernel (and to the disk with ``fsync``)."""
        self._stream.flush()
        if self._fsync:
            os.fsync(self._stream.fileno())
        self._pending = 0
        if self.nr_snapshots:
            self._commit()

    def _commit(self) -> None:
        if self._replacement is not None:
            self._replacement.commit()

    def close(self) -> None:
        """Flush, put the record in place (even without a snapshot) and close; closing twice is harmless."""
        if self._stream.closed:
            return
        try:
            self.flush()
            self._commit()
        except BaseException:
            self.discard()
            raise
        self._stream.close()

    def discard(self) -> None:
        """Close, leaving the file at ``path`` as it was unless a snapshot already replaced it."""
        if self._replacement is not None:
            self._replacement.discard()
        else:
            self._stream.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None or self.nr_snapshots:
            self.close()
        else:
            self.discard()
