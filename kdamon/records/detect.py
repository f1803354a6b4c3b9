"""Recognise a record file's format from its content and open it."""

from __future__ import annotations

from pathlib import Path

from kdamon.errors import RecordFormatError
from kdamon.records.format import MAGIC
from kdamon.records.peer import DamoJsonRecords
from kdamon.records.perf_script import PerfScriptRecords
from kdamon.records.reader import RecordReader
from kdamon.records.types import RecordSource
from kdamon.userfiles import reading

__all__ = ["FORMATS", "detect_format", "open_any"]

FORMATS = ("kdamon", "json_compressed", "json", "perf_script")
_PROBE_BYTES = 1 << 20


def _is_zlib_header(head: bytes) -> bool:
    # RFC 1950: deflate method (low nibble 8), window <= 32 KiB, header checksum
    return len(head) >= 2 and head[0] & 0x0F == 8 and head[0] >> 4 <= 7 and (head[0] << 8 | head[1]) % 31 == 0


def detect_format(path: str | Path) -> str:
    """One of ``FORMATS``, from the first bytes of the file."""
    with reading(path), open(path, "rb") as stream:
        head = stream.read(_PROBE_BYTES)
    if head.startswith(MAGIC):
        return "kdamon"
    if head.startswith((b"PERFILE2", b"PERFFILE")):
        raise RecordFormatError(
            f"{path} is a perf.data file; convert it with `perf script -i {path} > {path}.txt` and read the text"
        )
    if _is_zlib_header(head):
        return "json_compressed"
    if head.lstrip()[:1] in (b"[", b"{"):
        return "json"
    if b"damon_aggregated: " in head:
        return "perf_script"
    if not head:
        raise RecordFormatError(f"{path} is empty; a recording that was stopped at once leaves nothing to read")
    raise RecordFormatError(
        f"{path}: unknown record format (no damon_aggregated trace line in its first MiB); kdamon reads its own "
        "record files, damo's json and json_compressed records, and `perf script` text of damon:damon_aggregated"
    )


def open_any(path: str | Path, *, sample_us: int = 0, aggr_us: int = 0, skip_corrupt: bool = False) -> RecordSource:
    """Open a record file of any supported format.

    ``sample_us``/``aggr_us`` are stamped on perf script snapshots (the text
    does not carry the intervals); ``skip_corrupt`` applies to kdamon files.
    """
    fmt = detect_format(path)
    if fmt == "kdamon":
        return RecordReader(path, skip_corrupt=skip_corrupt)
    if fmt == "perf_script":
        return PerfScriptRecords(path, sample_us=sample_us, aggr_us=aggr_us)
    return DamoJsonRecords(path, compressed=fmt == "json_compressed")
