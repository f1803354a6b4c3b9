"""kdamon's record file: binary, append-only, streaming, self-delimiting.

Layout (all integers little-endian)::

    header   magic "\\x89KDAMON\\n" (8 bytes), version u16, flags u16,
             meta_len u32, meta_crc u32, then meta_len bytes of JSON (RecordMeta)
    chunk    kind u32, length u32, crc u32, then `length` bytes of payload;
             crc = zlib.crc32 over kind, length and payload
    kind 1   a snapshot: time_ns i64, target_idx u64, sample_us u64,
             aggr_us u64, kdamond_idx u32, context_idx u32, nr_regions u32,
             reserved u32, then nr_regions packed REGION_DTYPE rows (24 bytes
             each: start u64, end u64, nr_accesses u32, age u32)
    kind 2   scheme applications (``damos_before_apply``) of one kdamond:
             kdamond_idx u32, count u32, then count packed APPLY_DTYPE rows
             (48 bytes each: time_ns i64, context_idx u32, scheme_idx u32,
             target_idx u64, start u64, end u64, nr_accesses u32, age u32)
    kind 3   an intervals tune (``damon_monitor_intervals_tune``): time_ns i64,
             kdamond_idx u32, reserved u32, sample_us u64, aggr_us u64
    kind 4   a target added while recording (``--include-children``): index u32,
             then its description as JSON (the ``targets`` entry of the metadata);
             written only in files whose header has flag 1 (TARGETS_APPENDED), so
             that readers look for them only there

Each snapshot is written as one chunk, so a recorder killed mid-write leaves
a file whose complete chunks are intact; readers stop at an incomplete or
torn final chunk and report ``truncated``.  Readers skip chunks of kinds they
do not know (their length says how far), which leaves room for new kinds.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from kdamon.errors import RecordFormatError
from kdamon.model import IntervalsTune, SchemeApply
from kdamon.model.snapshot import REGION_DTYPE, RegionArray, Snapshot
from kdamon.records.types import RecordMeta

__all__ = [
    "APPLY_DTYPE",
    "FORMAT_VERSION",
    "KIND_APPLIES",
    "KIND_SNAPSHOT",
    "KIND_TARGET",
    "KIND_TUNE",
    "MAGIC",
    "TARGETS_APPENDED",
    "ChunkScanner",
    "applies_array",
    "decode_applies",
    "decode_snapshot",
    "decode_target",
    "decode_tune",
    "encode_applies",
    "encode_header",
    "encode_snapshot",
    "encode_target",
    "encode_tune",
    "read_header",
]

MAGIC = b"\x89KDAMON\n"
FORMAT_VERSION = 1  # kinds 2 and 3 came later: older readers skip them, as they skip any unknown kind
KIND_SNAPSHOT = 1
KIND_APPLIES = 2
KIND_TUNE = 3
KIND_TARGET = 4
TARGETS_APPENDED = 1
"""Header flag: kind-4 chunks add targets to the metadata's."""

APPLY_DTYPE = np.dtype(
    [
        ("time_ns", "<i8"),
        ("context_idx", "<u4"),
        ("scheme_idx", "<u4"),
        ("target_idx", "<u8"),
        ("start", "<u8"),
        ("end", "<u8"),
        ("nr_accesses", "<u4"),
        ("age", "<u4"),
    ]
)
"""One scheme application: when, which scheme and target, and the region it was about to act on."""

_HEADER = struct.Struct("<8sHHII")
_CHUNK = struct.Struct("<III")
_KIND_LENGTH = struct.Struct("<II")
_SNAPSHOT = struct.Struct("<qQQQIIII")
_APPLIES = struct.Struct("<II")
_TUNE = struct.Struct("<qIIQQ")
_TARGET = struct.Struct("<I")
_MAX_META_BYTES = 16 << 20


def encode_header(meta: RecordMeta, flags: int = 0) -> bytes:
    """The file header for ``meta`` (``flags``: :data:`TARGETS_APPENDED` or 0)."""
    body = json.dumps(
        {
            "producer": meta.producer,
            "sample_us": meta.sample_us,
            "aggr_us": meta.aggr_us,
            "ops": meta.ops,
            "targets": list(meta.targets),
        },
        sort_keys=True,
    ).encode()
    return _HEADER.pack(MAGIC, FORMAT_VERSION, flags, len(body), zlib.crc32(body)) + body


def read_header(stream: BinaryIO, path: Path) -> tuple[RecordMeta, int, int]:
    """Read the header at the start of ``stream``: the metadata, the format version and the flags."""
    fixed = stream.read(_HEADER.size)
    if fixed[: len(MAGIC)] != MAGIC[: len(fixed)] or not fixed:
        raise RecordFormatError(
            f"{path} is not a kdamon record file (bad magic); use open_any() to read damo's formats"
        )
    if len(fixed) < _HEADER.size:
        raise RecordFormatError(
            f"{path}: the record header is incomplete (the recorder stopped as it started); nothing to read"
        )
    _, version, flags, meta_len, meta_crc = _HEADER.unpack(fixed)
    if version > FORMAT_VERSION:
        raise RecordFormatError(
            f"{path} uses record format version {version}, newer than this kdamon reads "
            f"({FORMAT_VERSION}); upgrade kdamon to read it"
        )
    body = stream.read(meta_len) if meta_len <= _MAX_META_BYTES else b""
    if len(body) < meta_len <= _MAX_META_BYTES:
        raise RecordFormatError(
            f"{path}: the record header is incomplete (the recorder stopped as it started); nothing to read"
        )
    if len(body) != meta_len or zlib.crc32(body) != meta_crc:
        raise RecordFormatError(
            f"{path}: the record header is damaged (metadata checksum mismatch); the file cannot be read"
        )
    try:
        fields = json.loads(body)
        meta = RecordMeta(
            producer=str(fields["producer"]),
            sample_us=int(fields["sample_us"]),
            aggr_us=int(fields["aggr_us"]),
            ops=str(fields["ops"]),
            targets=tuple(dict(t) for t in fields["targets"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise RecordFormatError(f"{path}: the record metadata is not valid ({exc}); the file cannot be read") from exc
    return meta, version, flags


def encode_snapshot(snapshot: Snapshot) -> tuple[bytes, memoryview]:
    """A snapshot chunk, as its leading bytes and the region bytes that follow them."""
    regions = np.ascontiguousarray(snapshot.regions, dtype=REGION_DTYPE)
    body = regions.data.cast("B")
    head = _SNAPSHOT.pack(
        snapshot.time_ns,
        snapshot.target_idx,
        snapshot.sample_us,
        snapshot.aggr_us,
        snapshot.kdamond_idx,
        snapshot.context_idx,
        regions.shape[0],
        0,
    )
    kind_length = _KIND_LENGTH.pack(KIND_SNAPSHOT, len(head) + body.nbytes)
    crc = zlib.crc32(body, zlib.crc32(head, zlib.crc32(kind_length)))
    return kind_length + struct.pack("<I", crc) + head, body


def decode_snapshot(payload: bytes, path: Path, offset: int) -> Snapshot:
    """The snapshot in a kind-1 chunk payload (the regions are a view on ``payload``)."""
    if len(payload) < _SNAPSHOT.size:
        raise RecordFormatError(f"{path}: snapshot chunk at byte {offset} is too short; the file is damaged")
    time_ns, target_idx, sample_us, aggr_us, kdamond_idx, context_idx, nr_regions, _ = _SNAPSHOT.unpack_from(payload)
    if len(payload) != _SNAPSHOT.size + nr_regions * REGION_DTYPE.itemsize:
        raise RecordFormatError(
            f"{path}: snapshot chunk at byte {offset} holds {len(payload)} bytes for {nr_regions} regions; the file is damaged"
        )
    regions: RegionArray = np.frombuffer(payload, dtype=REGION_DTYPE, count=nr_regions, offset=_SNAPSHOT.size)
    return Snapshot(
        time_ns=time_ns,
        kdamond_idx=kdamond_idx,
        context_idx=context_idx,
        target_idx=target_idx,
        regions=regions,
        sample_us=sample_us,
        aggr_us=aggr_us,
    )


def _chunk(kind: int, head: bytes, body: bytes | memoryview = b"") -> tuple[bytes, bytes | memoryview]:
    kind_length = _KIND_LENGTH.pack(kind, len(head) + len(memoryview(body).cast("B")))
    crc = zlib.crc32(body, zlib.crc32(head, zlib.crc32(kind_length)))
    return kind_length + struct.pack("<I", crc) + head, body


def applies_array(applies: list[SchemeApply]) -> np.ndarray:
    """Scheme applications as ``APPLY_DTYPE`` rows."""
    return np.array(
        [
            (
                a.time_ns,
                a.context_idx,
                a.scheme_idx,
                a.target_idx,
                a.region.start,
                a.region.end,
                a.region.nr_accesses,
                a.region.age,
            )
            for a in applies
        ],
        dtype=APPLY_DTYPE,
    )


def encode_applies(kdamond_idx: int, applies: np.ndarray) -> tuple[bytes, bytes | memoryview]:
    """A chunk of scheme applications (an ``APPLY_DTYPE`` array) of one kdamond."""
    rows = np.ascontiguousarray(applies, dtype=APPLY_DTYPE)
    return _chunk(KIND_APPLIES, _APPLIES.pack(kdamond_idx, rows.shape[0]), rows.data.cast("B"))


def decode_applies(payload: bytes, path: Path, offset: int) -> tuple[int, np.ndarray]:
    """The kdamond index and the ``APPLY_DTYPE`` rows of a kind-2 chunk."""
    if len(payload) < _APPLIES.size:
        raise RecordFormatError(f"{path}: scheme application chunk at byte {offset} is too short; the file is damaged")
    kdamond_idx, count = _APPLIES.unpack_from(payload)
    if len(payload) != _APPLIES.size + count * APPLY_DTYPE.itemsize:
        raise RecordFormatError(
            f"{path}: scheme application chunk at byte {offset} has a wrong length; the file is damaged"
        )
    return kdamond_idx, np.frombuffer(payload, dtype=APPLY_DTYPE, count=count, offset=_APPLIES.size)


def encode_tune(tune: IntervalsTune) -> tuple[bytes, bytes | memoryview]:
    return _chunk(KIND_TUNE, _TUNE.pack(tune.time_ns, tune.kdamond_idx, 0, tune.sample_us, tune.aggr_us))


def decode_tune(payload: bytes, path: Path, offset: int) -> IntervalsTune:
    if len(payload) != _TUNE.size:
        raise RecordFormatError(
            f"{path}: intervals tune chunk at byte {offset} has a wrong length; the file is damaged"
        )
    time_ns, kdamond_idx, _, sample_us, aggr_us = _TUNE.unpack(payload)
    return IntervalsTune(time_ns, sample_us, aggr_us, kdamond_idx)


def encode_target(index: int, target: dict[str, object]) -> tuple[bytes, bytes | memoryview]:
    """A chunk adding target ``index``, described by ``target`` (JSON-compatible)."""
    return _chunk(KIND_TARGET, _TARGET.pack(index), json.dumps(target, sort_keys=True).encode())


def decode_target(payload: bytes, path: Path, offset: int) -> tuple[int, dict[str, object]]:
    """The index and the description of the target a kind-4 chunk adds."""
    try:
        (index,) = _TARGET.unpack_from(payload)
        target = json.loads(payload[_TARGET.size :])
    except (struct.error, ValueError) as exc:
        raise RecordFormatError(f"{path}: target chunk at byte {offset} is damaged ({exc})") from exc
    if not isinstance(target, dict):
        raise RecordFormatError(
            f"{path}: target chunk at byte {offset} holds no target description; the file is damaged"
        )
    return index, target


class ChunkScanner:
    """Walk the chunks of an open record file, checking each checksum.

    Iterating yields ``(kind, offset, payload)``.  An incomplete final chunk,
    a final chunk whose checksum fails (a torn write) or a zero-filled tail
    ends the walk with ``truncated = True``.  A damaged chunk followed by more
    data raises ``RecordFormatError``, unless ``skip_corrupt`` is set: then it
    is skipped and counted in ``corrupted``.  ``end`` is the offset just past
    the last good chunk (where an appending writer continues).
    """

    def __init__(self, stream: BinaryIO, path: Path, start: int, *, skip_corrupt: bool = False) -> None:
        self._stream = stream
        self._path = path
        self._skip_corrupt = skip_corrupt
        self.end = start
        self.truncated = False
        self.corrupted = 0

    def _size(self) -> int:
        return os.fstat(self._stream.fileno()).st_size

    def __iter__(self) -> Iterator[tuple[int, int, bytes]]:
        stream = self._stream
        size = self._size()
        offset = self.end
        stream.seek(offset)
        while True:
            head = stream.read(_CHUNK.size)
            if not head:
                return
            if len(head) < _CHUNK.size:
                self.truncated = True
                return
            kind, length, crc = _CHUNK.unpack(head)
            if kind == 0 and length == 0 and crc == 0:
                self.truncated = True  # a zero-filled tail left by a crash
                return
            chunk_end = offset + _CHUNK.size + length
            if chunk_end > size:
                size = self._size()  # the file may still be growing
                if chunk_end > size:
                    self.truncated = True
                    return
            payload = stream.read(length)
            if len(payload) < length:
                self.truncated = True
                return
            if zlib.crc32(payload, zlib.crc32(head[: _KIND_LENGTH.size])) != crc:
                if chunk_end >= size:
                    self.truncated = True  # a torn final write
                    return
                if not self._skip_corrupt:
                    raise RecordFormatError(
                        f"{self._path}: the chunk at byte {offset} fails its checksum (the file is damaged); "
                        "read it with skip_corrupt=True to skip damaged chunks"
                    )
                self.corrupted += 1
            else:
                yield kind, offset, payload
            offset = chunk_end
            self.end = offset
