"""What a snapshot says about memory: hot, warm and cold bytes, histograms, idle-time percentiles.

One definition for every view (``kdamon show``, ``top``, ``report access``, the
exporter), computed on a snapshot's region columns:

* a region's **access rate** is ``nr_accesses`` over the most it can reach in
  one aggregation (``aggr_us / sample_us``);
* **hot**: an access rate of at least ``Temperature.hot_permil``;
  **cold**: not accessed for at least ``Temperature.cold_idle_us`` (``nr_accesses``
  0 and ``age`` aggregations at least that long); **warm**: the rest (accessed
  less, or idle for less time): hot, warm and cold add up to every byte;
* **idle time** per byte, as DAMON_STAT's ``memory_idle_ms_percentiles``
  defines it: ``(age + 1)`` aggregations, negative for accessed regions (how
  long they have been accessed at that rate).

Times are microseconds, sizes bytes.  Loaded with the snapshot type (numpy).
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np
import numpy.typing as npt

from kdamon.errors import ConfigError
from kdamon.model.snapshot import Snapshot

__all__ = [
    "AGE_EDGES_US",
    "IDLE_PERCENTILES",
    "RATE_EDGES_PERMIL",
    "AccessSummary",
    "Temperature",
    "access_rate_permil",
    "idle_times_us",
    "summarise",
]

RATE_EDGES_PERMIL = (0, 1, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1001)
"""The temperature histogram's bins: not accessed, then tenths of the maximum access rate."""

AGE_EDGES_US = (0, 1_000_000, 10_000_000, 60_000_000, 600_000_000, 3_600_000_000, 2**63)
"""The recency histogram's bins: under 1 s, 1-10 s, 10 s-1 min, 1-10 min, 10 min-1 h, over 1 h."""

IDLE_PERCENTILES = (0, 25, 50, 75, 90, 99, 100)

IntArray = npt.NDArray[np.int64]


@attrs.frozen
class Temperature:
    """What counts as hot and cold (see the module's description)."""

    hot_permil: int = 500
    cold_idle_us: int = 1_000_000

    def __attrs_post_init__(self) -> None:
        if not 0 < self.hot_permil <= 1000:
            raise ConfigError(
                "hot", f"the hot threshold must be above 0% and at most 100%, got {self.hot_permil / 10:g}%"
            )
        if self.cold_idle_us < 0:
            raise ConfigError("cold", "the cold idle time cannot be negative")


def access_rate_permil(snapshot: Snapshot) -> IntArray:
    """Each region's ``nr_accesses`` in permil of the maximum (0 everywhere when the intervals are unknown)."""
    top = snapshot.max_nr_accesses
    accesses = snapshot.regions["nr_accesses"].astype(np.int64)
    if top <= 0:
        return np.zeros_like(accesses)
    rates: IntArray = np.minimum(accesses * 1000 // top, 1000)
    return rates


def idle_times_us(snapshot: Snapshot) -> IntArray:
    """Each region's idle time as DAMON_STAT defines it (negative: accessed for that long)."""
    ages = (snapshot.regions["age"].astype(np.int64) + 1) * snapshot.aggr_us
    idle: IntArray = np.where(snapshot.regions["nr_accesses"] == 0, ages, -ages)
    return idle


def _histogram(values: IntArray, edges: Sequence[int], weights: IntArray) -> IntArray:
    """Exact integer sums of ``weights`` per bin ``[edges[i], edges[i + 1])`` (the last bin takes everything above)."""
    bins = np.searchsorted(np.asarray(edges[1:-1], dtype=np.int64), values, side="right")
    out: IntArray = np.zeros(len(edges) - 1, dtype=np.int64)
    np.add.at(out, bins, weights)
    return out


def _weighted_percentiles(values: IntArray, weights: IntArray, percentiles: Sequence[float]) -> list[int]:
    """Nearest-rank percentiles of ``values`` counted ``weights`` times each (bytes)."""
    if values.size == 0:
        return [0 for _ in percentiles]
    order = np.argsort(values, kind="stable")
    ordered, cumulative = values[order], np.cumsum(weights[order])
    total = int(cumulative[-1])
    ranks = [max(int(np.ceil(p / 100 * total)), 1) for p in percentiles]
    return [int(ordered[np.searchsorted(cumulative, rank)]) for rank in ranks]


@attrs.frozen
class AccessSummary:
    """The totals and histograms of one snapshot (or of the regions a filter kept)."""

    total_bytes: int
    hot_bytes: int
    warm_bytes: int
    cold_bytes: int
    temperature: tuple[int, ...]  # bytes per RATE_EDGES_PERMIL bin
    recency: tuple[int, ...]  # bytes per AGE_EDGES_US bin
    idle_percentiles_us: tuple[tuple[float, int], ...]  # (percentile, idle time)

    def to_json(self) -> dict[str, object]:
        return {
            "total_bytes": self.total_bytes,
            "hot_bytes": self.hot_bytes,
            "warm_bytes": self.warm_bytes,
            "cold_bytes": self.cold_bytes,
            "temperature": [
                {"min_permil": low, "max_permil": high - 1, "bytes": size}
                for low, high, size in zip(RATE_EDGES_PERMIL, RATE_EDGES_PERMIL[1:], self.temperature, strict=False)
            ],
            "recency": [
                {"min_us": low, "max_us": high, "bytes": size}
                for low, high, size in zip(AGE_EDGES_US, AGE_EDGES_US[1:], self.recency, strict=False)
            ],
            "idle_percentiles_us": {f"{p:g}": v for p, v in self.idle_percentiles_us},
        }


def summarise(
    snapshot: Snapshot, temperature: Temperature = Temperature(), percentiles: Sequence[float] = IDLE_PERCENTILES
) -> AccessSummary:
    """The summary of a snapshot's regions."""
    sizes = snapshot.sizes.astype(np.int64)
    rates = access_rate_permil(snapshot)
    accessed = snapshot.regions["nr_accesses"] > 0
    ages_us = snapshot.regions["age"].astype(np.int64) * snapshot.aggr_us
    hot = accessed & (rates >= temperature.hot_permil)
    cold = ~accessed & (ages_us >= temperature.cold_idle_us)
    total, hot_bytes, cold_bytes = int(sizes.sum()), int(sizes[hot].sum()), int(sizes[cold].sum())
    rate_bins = _histogram(rates, RATE_EDGES_PERMIL, sizes)
    age_bins = _histogram(ages_us, AGE_EDGES_US, sizes)
    idle = _weighted_percentiles(idle_times_us(snapshot), sizes, percentiles)
    return AccessSummary(
        total_bytes=total,
        hot_bytes=hot_bytes,
        warm_bytes=total - hot_bytes - cold_bytes,
        cold_bytes=cold_bytes,
        temperature=tuple(int(b) for b in rate_bins),
        recency=tuple(int(b) for b in age_bins),
        idle_percentiles_us=tuple(zip((float(p) for p in percentiles), idle, strict=True)),
    )
