"""Readers for the peer's (damo's) JSON record files: ``json`` and ``json_compressed``.

damo writes a JSON list of records, one per monitored target::

    [{"kdamond_idx": 0, "context_idx": 0,
      "intervals": {"sample_us": 5000, "aggr_us": 100000, "ops_update_us": 1000000, ...},
      "scheme_idx": null, "target_id": 0, "scheme_filters": [],
      "snapshots": [{"start_time": ..., "end_time": ..., "total_bytes": ...,
                     "regions": [{"start": ..., "end": ...,
                                  "nr_accesses": {"samples": 3, "percent": null},
                                  "age": {"usec": null, "aggr_intervals": 7},
                                  "sz_filter_passed": 0}]}]}]

``json_compressed`` is the same text compressed with zlib.  Numbers may be
JSON numbers or strings: plain digits (damo's raw output), digits with
thousands separators, or values with units (``"5 ms"``, ``"1 s 200 ms"``,
``"4 KiB"``).  Older files have plain integers for ``nr_accesses`` and
``age``, and may lack ``kdamond_idx``/``context_idx``/``intervals``.  Snapshot
times are the ``end_time`` of each snapshot (the aggregation boundary).  The
whole document is parsed once, when the reader is created, and kept as
compact region arrays.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kdamon.errors import RecordFormatError
from kdamon.model.snapshot import Snapshot, regions_array
from kdamon.records.types import RecordMeta, RecordSource
from kdamon.userfiles import reading

__all__ = ["DamoJsonRecords"]

_TIME_NS = {"ns": 1, "us": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9, "d": 86400 * 10**9}
_SIZE = {"B": 1, **{p + s: 1 << (10 * (i + 1)) for i, p in enumerate("KMGTPE") for s in ("", "B", "iB")}}
_QUANTITY = re.compile(r"\s*(-?[0-9.,]+)\s*([A-Za-z]*)")


def _plain(text: str) -> int | float:
    digits = text.replace(",", "")
    try:
        return int(digits)
    except ValueError:
        return float(digits)


def _quantity(value: Any, units: dict[str, int], base: int) -> int:
    """``value`` in the unit worth ``base`` (a number, or text like ``"1 s 5 ms"``)."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"expected a number, got {value!r}")
    if isinstance(value, int | float):
        return int(value)
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    if text == "max":
        return 2**64 - 1
    total: int | float = 0
    pos = 0
    while pos < len(text):
        match = _QUANTITY.match(text, pos)
        if match is None or not match.group(1):
            raise ValueError(f"cannot read {value!r} as a quantity")
        number, unit = _plain(match.group(1)), match.group(2)
        if unit and unit not in units:
            raise ValueError(f"unknown unit {unit!r} in {value!r}")
        total += number * (units[unit] if unit else base)
        pos = match.end()
    return int(total // base)


def _time_ns(value: Any) -> int:
    return _quantity(value, _TIME_NS, 1)


def _time_us(value: Any) -> int:
    return _quantity(value, _TIME_NS, 10**3)


def _size(value: Any) -> int:
    return _quantity(value, _SIZE, 1)


def _count(value: Any) -> int:
    return _quantity(value, {}, 1)


def _nr_accesses(value: Any, max_nr_accesses: int) -> int:
    if not isinstance(value, dict):
        return _count(value)
    if value.get("samples") is not None:
        return _count(value["samples"])
    if value.get("percent") is not None:
        return int(float(_plain(str(value["percent"]).rstrip("% "))) * max_nr_accesses / 100)
    raise ValueError("nr_accesses has neither samples nor percent")


def _age(value: Any, aggr_us: int) -> int:
    if not isinstance(value, dict):
        return _count(value)
    if value.get("aggr_intervals") is not None:
        return _count(value["aggr_intervals"])
    if value.get("usec") is not None and aggr_us > 0:
        return _time_us(value["usec"]) // aggr_us
    raise ValueError("age has neither aggr_intervals nor usec (with known aggr_us)")


def _record_snapshots(record: dict[str, Any], position: int) -> tuple[list[Snapshot], int, int]:
    """The snapshots of one damo record, and its sample_us and aggr_us (0 if unknown)."""
    intervals = record.get("intervals") or {}
    sample_us = _time_us(intervals["sample_us"]) if "sample_us" in intervals else 0
    aggr_us = _time_us(intervals["aggr_us"]) if "aggr_us" in intervals else 0
    max_nr_accesses = aggr_us // sample_us if sample_us > 0 else 0
    target = record.get("target_id")
    kdamond, context = record.get("kdamond_idx"), record.get("context_idx")
    snapshots = []
    for snapshot in record["snapshots"]:
        regions = snapshot["regions"]
        time = snapshot.get("end_time")
        if time is None:
            time = snapshot["start_time"]
        snapshots.append(
            Snapshot(
                time_ns=_time_ns(time),
                kdamond_idx=_count(kdamond) if kdamond is not None else 0,
                context_idx=_count(context) if context is not None else 0,
                target_idx=_count(target) if target is not None else position,
                regions=regions_array(
                    [_size(r["start"]) for r in regions],
                    [_size(r["end"]) for r in regions],
                    [_nr_accesses(r["nr_accesses"], max_nr_accesses) for r in regions],
                    [_age(r["age"], aggr_us) for r in regions],
                ),
                sample_us=sample_us,
                aggr_us=aggr_us,
            )
        )
    return snapshots, sample_us, aggr_us


class DamoJsonRecords(RecordSource):
    """A damo record file in ``json`` or (``compressed=True``) ``json_compressed`` form."""

    def __init__(self, path: str | Path, *, compressed: bool) -> None:
        super().__init__(path)
        self.format_name = "json_compressed" if compressed else "json"
        with reading(self.path):
            data = self.path.read_bytes()
        try:
            if compressed:
                data = zlib.decompress(data)
            document = json.loads(data)
        except (zlib.error, ValueError) as exc:
            raise RecordFormatError(f"{self.path}: not readable as damo {self.format_name} ({exc})") from exc
        del data
        self._snapshots: list[Snapshot] = []
        sample_us = aggr_us = 0
        targets: list[dict[str, Any]] = []
        try:
            if not isinstance(document, list):
                raise TypeError("the document is not a list of records")
            for position, record in enumerate(document):
                snapshots, record_sample, record_aggr = _record_snapshots(record, position)
                self._snapshots.extend(snapshots)
                sample_us, aggr_us = sample_us or record_sample, aggr_us or record_aggr
                targets.append({"target_id": record.get("target_id"), "scheme_idx": record.get("scheme_idx")})
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise RecordFormatError(
                f"{self.path}: not a damo record file ({type(exc).__name__}: {exc}); "
                "expected a list of records with snapshots of regions"
            ) from exc
        self._snapshots.sort(key=lambda snapshot: snapshot.time_ns)
        self._meta = RecordMeta(
            producer=f"damo-{self.format_name}", sample_us=sample_us, aggr_us=aggr_us, targets=tuple(targets)
        )

    @property
    def meta(self) -> RecordMeta:
        return self._meta

    def snapshots(self) -> Iterator[Snapshot]:
        return iter(self._snapshots)
