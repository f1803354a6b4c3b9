"""The access view of a snapshot: its regions with their access rate and age, the totals and histograms.

What ``kdamon show``, ``kdamon top`` and ``kdamon report access`` print: the
regions (filtered and sorted), then hot, warm and cold bytes, a size-by-access-rate
histogram ("temperature"), a size-by-age histogram ("recency") and idle-time
percentiles (:mod:`kdamon.model.access` defines them).  ``--json`` gives one
object per snapshot: the ``report raw --json`` fields plus the intervals and
the summary.
"""

from __future__ import annotations

import json
from typing import Literal

import attrs
import numpy as np

from kdamon.errors import ConfigError
from kdamon.model import (
    Bound,
    format_duration_us,
    format_size,
    parse_bound,
    parse_range,
    parse_seconds_us,
    parse_size,
)
from kdamon.model.access import (
    AGE_EDGES_US,
    RATE_EDGES_PERMIL,
    AccessSummary,
    Temperature,
    access_rate_permil,
    summarise,
)
from kdamon.model.snapshot import Snapshot
from kdamon.report.raw import regions_json

__all__ = ["SORTS", "RegionFilter", "Sort", "access_json", "access_text", "parse_address_range", "sort_regions"]

Sort = Literal["address", "hot", "age"]
SORTS: tuple[Sort, ...] = ("address", "hot", "age")
_BAR = 40


def parse_address_range(text: str, field: str = "--address-range") -> tuple[int, int]:
    """``START-END`` in hex or decimal."""
    low_text, high_text = parse_range(text, field)
    try:
        low, high = int(low_text, 0), int(high_text, 0)
    except ValueError:
        raise ConfigError(field, f"expected START-END addresses (hex or decimal), got {text!r}") from None
    if low >= high:
        raise ConfigError(field, f"START must be below END, got {text!r}")
    return low, high


@attrs.frozen
class RegionFilter:
    """Which regions a view keeps: an address range (regions are cut to it), an access-rate range,
    an age range (microseconds) and a smallest size."""

    address: tuple[int, int] | None = None
    access: tuple[Bound, Bound] | None = None
    age_us: tuple[int, int | None] | None = None
    min_size: int = 0

    @classmethod
    def parse(
        cls,
        *,
        address: str | None = None,
        access: str | None = None,
        age: str | None = None,
        min_size: str | None = None,
    ) -> RegionFilter:
        """From the command line's texts: ``0x1000-0x2000``, ``0-10%`` or ``5-max``, ``10s-max``, ``4K``."""
        access_range = None
        if access is not None:
            low, high = parse_range(access, "--access")
            access_range = (parse_bound(low, "nr_accesses", "--access"), parse_bound(high, "nr_accesses", "--access"))
        age_range = None
        if age is not None:
            low, high = parse_range(age, "--age")
            age_range = (
                0 if low == "min" else parse_seconds_us(low, "--age"),
                None if high == "max" else parse_seconds_us(high, "--age"),
            )
        return cls(
            address=parse_address_range(address) if address is not None else None,
            access=access_range,
            age_us=age_range,
            min_size=parse_size(min_size, "--min-size") if min_size is not None else 0,
        )

    def apply(self, snapshot: Snapshot) -> Snapshot:
        """The snapshot with only the regions this filter keeps."""
        regions = snapshot.regions
        if self.address is not None:
            low, high = self.address
            regions = regions[(regions["end"] > low) & (regions["start"] < high)].copy()
            regions["start"] = np.maximum(regions["start"], np.uint64(low))
            regions["end"] = np.minimum(regions["end"], np.uint64(high))
        keep = np.ones(regions.shape[0], dtype=bool)
        if self.access is not None:
            low_bound, high_bound = self.access
            limits = {"max_nr_accesses": snapshot.max_nr_accesses, "aggr_us": snapshot.aggr_us}
            keep &= regions["nr_accesses"] >= low_bound.resolve("min", **limits)
            keep &= regions["nr_accesses"] <= high_bound.resolve("max", **limits)
        if self.age_us is not None:
            ages = regions["age"].astype(np.int64) * snapshot.aggr_us
            keep &= ages >= self.age_us[0]
            if self.age_us[1] is not None:
                keep &= ages <= self.age_us[1]
        if self.min_size:
            keep &= (regions["end"] - regions["start"]) >= self.min_size
        if not keep.all():
            regions = regions[keep]
        return snapshot if regions is snapshot.regions else attrs.evolve(snapshot, regions=regions)


def sort_regions(snapshot: Snapshot, key: Sort) -> Snapshot:
    """The snapshot's regions by address, hottest first (then largest), or oldest first."""
    regions = snapshot.regions
    if key == "address":
        return snapshot
    if key == "hot":
        order = np.lexsort(
            (-(regions["end"] - regions["start"]).astype(np.int64), -regions["nr_accesses"].astype(np.int64))
        )
    elif key == "age":
        order = np.argsort(-regions["age"].astype(np.int64), kind="stable")
    else:
        raise ConfigError("--sort", f"unknown order {key!r}; use one of {', '.join(SORTS)}")
    return attrs.evolve(snapshot, regions=regions[order])


# -- text -------------------------------------------------------------------------


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "-"


def _bar(part: int, whole: int) -> str:
    return "#" * (round(_BAR * part / whole) if whole else 0)


def _rate_label(low: int, high: int) -> str:
    """A temperature bin's label; rates are in permil, the last bin includes 100%."""
    if high == 1:
        return "0%"
    if low == 1:
        return "<10%"
    return f"{low // 10}-{min(high - 1, 1000) // 10}%"


def _age_label(low: int, high: int) -> str:
    if high == AGE_EDGES_US[-1]:
        return f">= {format_duration_us(low)}"
    return f"< {format_duration_us(high)}" if low == 0 else f"{format_duration_us(low)}-{format_duration_us(high)}"


def _signed_duration(us: int) -> str:
    text = format_duration_us(abs(us), approx=True)
    return f"-{text}" if us < 0 else text


def _summary_text(summary: AccessSummary, temperature: Temperature) -> list[str]:
    total = summary.total_bytes
    lines = [
        f"total {format_size(total, approx=True)}: hot {format_size(summary.hot_bytes, approx=True)} "
        f"({_percent(summary.hot_bytes, total)}), warm {format_size(summary.warm_bytes, approx=True)} "
        f"({_percent(summary.warm_bytes, total)}), cold {format_size(summary.cold_bytes, approx=True)} "
        f"({_percent(summary.cold_bytes, total)})  [hot: accessed in >= {temperature.hot_permil / 10:g}% of "
        f"samples; cold: idle >= {format_duration_us(temperature.cold_idle_us, approx=True)}]",
        "temperature (size by access rate; empty bins left out):",
    ]
    for low, high, size in zip(RATE_EDGES_PERMIL, RATE_EDGES_PERMIL[1:], summary.temperature, strict=False):
        if size:
            lines.append(f"  {_rate_label(low, high):>8}  {format_size(size, approx=True):>10}  {_bar(size, total)}")
    lines.append("recency (size by age; empty bins left out):")
    for low, high, size in zip(AGE_EDGES_US, AGE_EDGES_US[1:], summary.recency, strict=False):
        if size:
            lines.append(f"  {_age_label(low, high):>8}  {format_size(size, approx=True):>10}  {_bar(size, total)}")
    idle = ", ".join(f"p{p:g} {_signed_duration(v)}" for p, v in summary.idle_percentiles_us)
    lines.append(f"idle time percentiles (negative: accessed for that long): {idle}")
    return lines


def access_text(
    snapshot: Snapshot,
    *,
    title: str,
    temperature: Temperature = Temperature(),
    region_filter: RegionFilter = RegionFilter(),
    sort: Sort = "address",
    limit: int | None = None,
) -> str:
    """The region table and summary of one snapshot, for a terminal or a pipe."""
    kept = region_filter.apply(snapshot)
    summary = summarise(kept, temperature)
    shown = sort_regions(kept, sort)
    rows = shown.rows()
    rates = access_rate_permil(shown).tolist()
    top = snapshot.max_nr_accesses
    intervals = (
        f"sample {format_duration_us(snapshot.sample_us, approx=True)}, "
        f"aggr {format_duration_us(snapshot.aggr_us, approx=True)}"
        if snapshot.sample_us
        else "intervals unknown"
    )
    filtered = "" if kept.nr_regions == snapshot.nr_regions else f" ({kept.nr_regions} after filters)"
    lines = [
        f"{title}: {snapshot.nr_regions} regions{filtered}, {format_size(snapshot.total_size, approx=True)}; "
        f"{intervals}",
        f"{'start':>18} {'end':>18} {'size':>10} {'accesses':>14} {'age':>9}",
    ]
    cut = rows if limit is None else rows[:limit]
    for (start, end, nr_accesses, age), rate in zip(cut, rates, strict=False):
        accesses = f"{nr_accesses}/{top} {rate / 10:3.0f}%" if top else str(nr_accesses)
        lines.append(
            f"{start:#18x} {end:#18x} {format_size(end - start, approx=True):>10} {accesses:>14} "
            f"{format_duration_us(age * snapshot.aggr_us, approx=True):>9}"
        )
    if len(cut) < len(rows):
        lines.append(f"  ... {len(rows) - len(cut)} more regions")
    lines.extend(_summary_text(summary, temperature))
    return "\n".join(lines) + "\n"


# -- JSON -------------------------------------------------------------------------


def access_json(
    snapshot: Snapshot,
    *,
    temperature: Temperature = Temperature(),
    region_filter: RegionFilter = RegionFilter(),
    sort: Sort = "address",
    extra: dict[str, object] | None = None,
) -> str:
    """One line of JSON: the ``report raw --json`` fields, the intervals, and the summary."""
    kept = region_filter.apply(snapshot)
    shown = sort_regions(kept, sort)
    head = {
        "time_ns": snapshot.time_ns,
        "target": {
            "kdamond_idx": snapshot.kdamond_idx,
            "context_idx": snapshot.context_idx,
            "target_idx": snapshot.target_idx,
        },
        "sample_us": snapshot.sample_us,
        "aggr_us": snapshot.aggr_us,
        **(extra or {}),
        "summary": summarise(kept, temperature).to_json(),
    }
    regions = regions_json(shown.regions)
    return json.dumps(head, separators=(",", ":"))[:-1] + ',"regions":[' + regions + "]}\n"
