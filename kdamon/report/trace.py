"""Scheme applications over time: what ``kdamon report trace`` prints.

A record made from kernel DAMON keeps every ``damos_before_apply`` event
(each region a scheme was about to act on) and every interval tune; this
counts the applications per scheme in time bins: regions and bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import attrs
import numpy as np

from kdamon.errors import ConfigError
from kdamon.model import IntervalsTune, format_duration_us, format_size

__all__ = ["ApplyBin", "apply_bins", "trace_json", "trace_text"]


@attrs.frozen
class ApplyBin:
    """Applications of one scheme of one kdamond in ``[start_ns, start_ns + width_ns)`` (from the record's start)."""

    start_ns: int
    kdamond_idx: int
    context_idx: int
    scheme_idx: int
    regions: int
    bytes: int


def apply_bins(chunks: Iterable[tuple[int, np.ndarray]], *, origin_ns: int, width_ns: int) -> list[ApplyBin]:
    """Count ``APPLY_DTYPE`` rows (with their kdamond index) per time bin and scheme, in time order."""
    if width_ns <= 0:
        raise ConfigError("--interval", "the time bins must be longer than zero")
    counts: dict[tuple[int, int, int, int], list[int]] = {}
    for kdamond_idx, rows in chunks:
        if not rows.size:
            continue
        bins = (rows["time_ns"] - origin_ns) // width_ns
        sizes = (rows["end"] - rows["start"]).astype(np.int64)
        keys = np.stack([bins, rows["context_idx"].astype(np.int64), rows["scheme_idx"].astype(np.int64)], axis=1)
        unique, inverse = np.unique(keys, axis=0, return_inverse=True)
        regions = np.bincount(inverse.ravel(), minlength=len(unique))
        sums = np.zeros(len(unique), dtype=np.int64)
        np.add.at(sums, inverse.ravel(), sizes)
        for (time_bin, context_idx, scheme_idx), n, size in zip(
            unique.tolist(), regions.tolist(), sums.tolist(), strict=True
        ):
            entry = counts.setdefault((time_bin, kdamond_idx, context_idx, scheme_idx), [0, 0])
            entry[0] += n
            entry[1] += size
    return [
        ApplyBin(time_bin * width_ns, kd, ctx, scheme, n, size)
        for (time_bin, kd, ctx, scheme), (n, size) in sorted(counts.items())
    ]


def trace_text(bins: list[ApplyBin], tunes: list[IntervalsTune], *, origin_ns: int, width_ns: int) -> str:
    """A table of applications per scheme and time bin, the totals, and the interval tunes."""
    lines = [
        f"scheme applications per {format_duration_us(width_ns // 1000, approx=True)} "
        f"(damos_before_apply: the regions each scheme was about to act on)",
        f"{'time':>10} {'kdamond':>7} {'scheme':>6} {'regions':>9} {'bytes':>12}",
    ]
    if not bins:
        lines.append(
            "  (none: no scheme applied to any region, or the record was not made from kernel DAMON 6.7+ trace events)"
        )
    for b in bins:
        lines.append(
            f"{b.start_ns / 1e9:>9.1f}s {b.kdamond_idx:>7} {b.scheme_idx:>6} {b.regions:>9} "
            f"{format_size(b.bytes, approx=True):>12}"
        )
    totals: dict[tuple[int, int], list[int]] = {}
    for b in bins:
        entry = totals.setdefault((b.kdamond_idx, b.scheme_idx), [0, 0])
        entry[0] += b.regions
        entry[1] += b.bytes
    for (kd, scheme), (n, size) in sorted(totals.items()):
        lines.append(f"{'total':>10} {kd:>7} {scheme:>6} {n:>9} {format_size(size, approx=True):>12}")
    if tunes:
        lines.append("interval tunes (damon_monitor_intervals_tune):")
        lines.extend(
            f"{(t.time_ns - origin_ns) / 1e9:>9.1f}s kdamond {t.kdamond_idx}: sample "
            f"{format_duration_us(t.sample_us, approx=True)}, aggr "
            f"{format_duration_us(t.aggr_us, approx=True) if t.aggr_us else '?'}"
            for t in tunes
        )
    return "\n".join(lines) + "\n"


def trace_json(bins: list[ApplyBin], tunes: list[IntervalsTune], *, origin_ns: int, width_ns: int) -> str:
    """The same as one JSON document."""
    return (
        json.dumps(
            {
                "origin_ns": origin_ns,
                "bin_ns": width_ns,
                "applications": [attrs.asdict(b) for b in bins],
                "tunes": [attrs.asdict(t) for t in tunes],
            }
        )
        + "\n"
    )
