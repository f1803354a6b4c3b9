"""Raw dumps of snapshots: readable text, or JSON Lines (one object per snapshot).

Each JSON line is ``{"time_ns": int, "target": {"kdamond_idx": int,
"context_idx": int, "target_idx": int}, "regions": [{"start": int, "end": int,
"nr_accesses": int, "age": int}, ...]}``.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any, TextIO

from kdamon.model import format_size
from kdamon.model.snapshot import RegionArray, Snapshot

__all__ = ["raw_json", "raw_text", "regions_json", "snapshot_json", "write_raw_json", "write_raw_text"]

_FIELDS = ("start", "end", "nr_accesses", "age")


def snapshot_json(snapshot: Snapshot) -> dict[str, Any]:
    """The JSON-ready form of one snapshot."""
    return {
        "time_ns": snapshot.time_ns,
        "target": {
            "kdamond_idx": snapshot.kdamond_idx,
            "context_idx": snapshot.context_idx,
            "target_idx": snapshot.target_idx,
        },
        "regions": [dict(zip(_FIELDS, row, strict=True)) for row in snapshot.regions.tolist()],
    }


_REGION_JSON = '{"start":%d,"end":%d,"nr_accesses":%d,"age":%d}'
_SNAPSHOT_JSON = '{"time_ns":%d,"target":{"kdamond_idx":%d,"context_idx":%d,"target_idx":%d},"regions":[%s]}\n'


def regions_json(regions: RegionArray) -> str:
    """The regions as compact JSON objects separated by commas (the inside of a JSON list)."""
    columns = [regions[name].tolist() for name in _FIELDS]  # one list per column: faster than rows
    return ",".join([_REGION_JSON % row for row in zip(*columns, strict=True)])


def write_raw_json(stream: TextIO, snapshots: Iterable[Snapshot]) -> None:
    """Write one JSON object per snapshot, one per line (compact, as ``json.dumps`` of ``snapshot_json``)."""
    for snapshot in snapshots:
        regions = regions_json(snapshot.regions)
        stream.write(
            _SNAPSHOT_JSON
            % (snapshot.time_ns, snapshot.kdamond_idx, snapshot.context_idx, snapshot.target_idx, regions)
        )


def write_raw_text(stream: TextIO, snapshots: Iterable[Snapshot]) -> None:
    """Write each snapshot as a header line and one line per region."""
    for snapshot in snapshots:
        stream.write(
            f"time_ns {snapshot.time_ns} kdamond {snapshot.kdamond_idx} context {snapshot.context_idx} "
            f"target {snapshot.target_idx} sample_us {snapshot.sample_us} aggr_us {snapshot.aggr_us} "
            f"nr_regions {snapshot.regions.size}\n"
        )
        stream.writelines(
            f"  {start:#x}-{end:#x} ({format_size(end - start, approx=True)}) nr_accesses {nr_accesses} age {age}\n"
            for start, end, nr_accesses, age in snapshot.regions.tolist()
        )


def raw_json(snapshots: Iterable[Snapshot]) -> str:
    """``write_raw_json`` into a string."""
    out = io.StringIO()
    write_raw_json(out, snapshots)
    return out.getvalue()


def raw_text(snapshots: Iterable[Snapshot]) -> str:
    """``write_raw_text`` into a string."""
    out = io.StringIO()
    write_raw_text(out, snapshots)
    return out.getvalue()
