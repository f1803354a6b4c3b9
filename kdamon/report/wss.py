"""Working set size: per snapshot, the bytes of regions accessed more than a threshold."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

import attrs
import numpy as np
import numpy.typing as npt

from kdamon.errors import ConfigError
from kdamon.model import format_size
from kdamon.model.snapshot import Snapshot
from kdamon.records.types import group_by_target

__all__ = ["DEFAULT_PERCENTILES", "WssSeries", "wss_by_target", "wss_json", "wss_percentiles", "wss_table"]

DEFAULT_PERCENTILES = (0, 1, 25, 50, 75, 99, 100)


@attrs.frozen(eq=False)
class WssSeries:
    """One target's working set size (bytes) at each snapshot time."""

    target: tuple[int, int, int]
    times_ns: npt.NDArray[np.int64]
    sizes: npt.NDArray[np.uint64]


def _wss(snapshot: Snapshot, threshold: int) -> int:
    regions = snapshot.regions
    hot = regions["nr_accesses"] > threshold
    return int((regions["end"][hot] - regions["start"][hot]).sum())


def wss_by_target(snapshots: Iterable[Snapshot], *, threshold: int = 0) -> list[WssSeries]:
    """Per target, the total size of regions with ``nr_accesses > threshold`` in each snapshot."""
    return [
        WssSeries(
            target=target,
            times_ns=np.array([s.time_ns for s in group], dtype=np.int64),
            sizes=np.array([_wss(s, threshold) for s in group], dtype=np.uint64),
        )
        for target, group in group_by_target(snapshots).items()
    ]


def wss_percentiles(
    sizes: npt.NDArray[np.uint64], percentiles: Sequence[float] = DEFAULT_PERCENTILES
) -> list[tuple[float, int]]:
    """``(percentile, size)`` pairs, nearest rank: every size reported is one that was measured."""
    if sizes.size == 0:
        raise ConfigError("snapshots", "no snapshots to compute working set sizes from")
    for p in percentiles:
        if not 0 <= p <= 100:
            raise ConfigError("percentiles", f"{p} is not between 0 and 100")
    ordered = np.sort(sizes)
    ranks = [max(int(np.ceil(p / 100 * ordered.size)) - 1, 0) for p in percentiles]
    return [(float(p), int(ordered[rank])) for p, rank in zip(percentiles, ranks, strict=True)]


def _mean(sizes: npt.NDArray[np.uint64]) -> int:
    return int(sizes.astype(np.float64).mean())


def _series(snapshots: Iterable[Snapshot], threshold: int) -> list[WssSeries]:
    series = wss_by_target(snapshots, threshold=threshold)
    if not series:
        raise ConfigError("record", "the record holds no snapshots; record for longer than one aggregation interval")
    return series


def wss_json(
    snapshots: Iterable[Snapshot],
    *,
    threshold: int = 0,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
) -> str:
    """``wss_table`` as one JSON document (and a newline), with each snapshot's working set size."""
    return (
        json.dumps(
            [
                {
                    "target": list(one.target),
                    "threshold": threshold,
                    "percentiles": [
                        {"percentile": p, "bytes": size} for p, size in wss_percentiles(one.sizes, percentiles)
                    ],
                    "mean_bytes": _mean(one.sizes),
                    "snapshots": [
                        {"time_ns": t, "bytes": size}
                        for t, size in zip(one.times_ns.tolist(), one.sizes.tolist(), strict=True)
                    ],
                }
                for one in _series(snapshots, threshold)
            ]
        )
        + "\n"
    )


def wss_table(
    snapshots: Iterable[Snapshot],
    *,
    threshold: int = 0,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
) -> str:
    """A percentile table of the working set size per target, with the mean."""
    lines: list[str] = []
    for one in _series(snapshots, threshold):
        kd, ctx, tgt = one.target
        lines.append(
            f"working set size of kdamond {kd} context {ctx} target {tgt}: {one.sizes.size} snapshots, "
            f"regions with nr_accesses > {threshold}"
        )
        lines.append(f"{'percentile':>10}  {'wss':>12}  {'bytes':>20}")
        for p, size in wss_percentiles(one.sizes, percentiles):
            lines.append(f"{p:>10g}  {format_size(size, approx=True):>12}  {size:>20}")
        mean = _mean(one.sizes)
        lines.append(f"{'mean':>10}  {format_size(mean, approx=True):>12}  {mean:>20}")
        lines.append("")
    return "\n".join(lines)
