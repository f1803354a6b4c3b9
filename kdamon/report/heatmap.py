"""Access heatmaps: in the terminal (characters, or ANSI 256 colours) and as PNG.

Terminal: one row per time bin (time goes down), one column per address
bin of the compacted address axis (see ``kdamon.report.grid``); denser
characters (and hotter colours) mean more accesses relative to
``max_nr_accesses``.  PNG (needs the optional ``plot`` dependency,
matplotlib): time on the x axis, address on the y axis.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import numpy.typing as npt

from kdamon.errors import ConfigError, KdamonError
from kdamon.model import format_size
from kdamon.model.snapshot import Snapshot
from kdamon.records.types import group_by_target
from kdamon.report.grid import HeatGrid, heat_grid
from kdamon.userfiles import Replacement

__all__ = [
    "COLOURS",
    "LEVELS",
    "heatmap_figure",
    "heatmap_json",
    "heatmap_text",
    "levels_of",
    "select_target",
    "write_heatmap",
    "write_heatmap_png",
]

LEVELS = " .:-=+*#%@"
"""Characters from no access (``" "``) to ``max_nr_accesses`` (``"@"``)."""

COLOURS = (16, 52, 88, 124, 160, 196, 202, 208, 220, 226)
"""ANSI 256-colour palette (black, reds, oranges, yellow), one per level."""

_RESET = "\x1b[0m"


def select_target(snapshots: Iterable[Snapshot], target: tuple[int, int, int] | None = None) -> list[Snapshot]:
    """The snapshots of ``target`` (kdamond, context, target indices); by default the first target seen."""
    groups = group_by_target(snapshots)
    if not groups:
        raise ConfigError("record", "the record holds no snapshots; record for longer than one aggregation interval")
    if target is None:
        return next(iter(groups.values()))
    if target not in groups:
        known = ", ".join(f"{k}/{c}/{t}" for k, c, t in groups)
        raise ConfigError(
            "target", f"no snapshots of target {target[0]}/{target[1]}/{target[2]}; the record has {known}"
        )
    return groups[target]


def levels_of(values: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """Level 0..9 per cell.  Any access at all shows as at least level 1."""
    levels: npt.NDArray[np.int64] = np.clip(np.ceil(values * (len(LEVELS) - 1)), 0, len(LEVELS) - 1).astype(np.int64)
    return levels


def _seconds(ns: int) -> str:
    return f"{ns / 1e9:.3f}"


def _address_axis(grid: HeatGrid, width: int, indent: str) -> list[str]:
    """Lines under the map: area boundaries on the axis, then each area's address range."""
    areas = grid.areas
    marks = [" "] * width
    for index, offset in enumerate(areas.offsets.tolist()):
        column = min(int(offset * width / max(areas.total, 1)), width - 1)
        marks[column] = "^" if index == 0 else "|"
    first, last = f"{int(areas.starts[0]):#x}", f"{int(areas.ends[-1]):#x}"
    labels = first + last.rjust(max(width - len(first), len(last) + 1))
    lines = [indent + "+" + "".join(marks) + "+", indent + " " + labels]
    lines.append(
        f"address: {areas.starts.size} monitored area(s) laid end to end (gaps removed), "
        f"{format_size(areas.total, approx=True)} in all; '|' marks where an area begins"
    )
    for index, (start, end) in enumerate(zip(areas.starts.tolist(), areas.ends.tolist(), strict=True)):
        lines.append(f"  area {index}: [{start:#x}, {end:#x}) {format_size(end - start, approx=True)}")
    return lines


def heatmap_text(
    snapshots: Iterable[Snapshot],
    *,
    width: int = 80,
    height: int = 40,
    color: bool = False,
    target: tuple[int, int, int] | None = None,
    max_nr_accesses: int | None = None,
) -> str:
    """The terminal heatmap of one target, as text (ANSI colour escapes with ``color``)."""
    chosen = select_target(snapshots, target)
    grid = heat_grid(chosen, time_bins=height, addr_bins=width, max_nr_accesses=max_nr_accesses)
    levels = levels_of(grid.values)
    origin = int(grid.time_edges_ns[0])
    span = int(grid.time_edges_ns[-1]) - origin
    kd, ctx, tgt = grid.target
    lines = [
        (
            f"heatmap of kdamond {kd} context {ctx} target {tgt}: {grid.nr_snapshots} snapshots over "
            f"{_seconds(span)} s; intensity = nr_accesses / {grid.max_nr_accesses}"
        ),
        (
            f"legend: '{LEVELS[0]}' none, '{LEVELS[1]}' some ... '{LEVELS[-1]}' {grid.max_nr_accesses} "
            "(the maximum) accesses per aggregation"
        ),
    ]
    label_width = max(len(_seconds(span)), len("time s"))
    indent = " " * (label_width + 1)
    lines.append(f"{'time s':>{label_width}} address ->")
    for row, start_ns in zip(levels, grid.time_edges_ns[:-1].tolist(), strict=False):
        label = f"{_seconds(start_ns - origin):>{label_width}} "
        if color:
            cells = "".join(f"\x1b[48;5;{COLOURS[lv]}m{LEVELS[lv]}" for lv in row.tolist())
            lines.append(label + "|" + cells + _RESET + "|")
        else:
            lines.append(label + "|" + "".join(LEVELS[lv] for lv in row.tolist()) + "|")
    lines.extend(_address_axis(grid, levels.shape[1], indent))
    return "\n".join(lines) + "\n"


def write_heatmap(
    stream: TextIO,
    snapshots: Iterable[Snapshot],
    *,
    width: int = 80,
    height: int = 40,
    color: bool = False,
    target: tuple[int, int, int] | None = None,
    max_nr_accesses: int | None = None,
) -> None:
    """Write the terminal heatmap to ``stream``, with ANSI colours if ``color`` (the command line
    decides: ``kdamon.cli.common.use_color``)."""
    stream.write(
        heatmap_text(snapshots, width=width, height=height, color=color, target=target, max_nr_accesses=max_nr_accesses)
    )


def heatmap_json(
    snapshots: Iterable[Snapshot],
    *,
    width: int = 80,
    height: int = 40,
    target: tuple[int, int, int] | None = None,
    max_nr_accesses: int | None = None,
) -> str:
    """The grid of the terminal heatmap as one JSON document (and a newline).

    ``values[row][column]``: the access intensity (``nr_accesses / max_nr_accesses``, 0 to 1) of
    time bin ``row`` (from ``time_edges_ns[row]`` to the next edge) and address bin ``column``
    (from ``address_edges[column]`` to the next edge, on the monitored ``areas`` laid end to end).
    """
    chosen = select_target(snapshots, target)
    grid = heat_grid(chosen, time_bins=height, addr_bins=width, max_nr_accesses=max_nr_accesses)
    areas = grid.areas
    return (
        json.dumps(
            {
                "target": list(grid.target),
                "nr_snapshots": grid.nr_snapshots,
                "max_nr_accesses": grid.max_nr_accesses,
                "time_edges_ns": grid.time_edges_ns.tolist(),
                "address_edges": [areas.address_at(float(edge)) for edge in grid.addr_edges.tolist()],
                "areas": [
                    {"start": start, "end": end}
                    for start, end in zip(areas.starts.tolist(), areas.ends.tolist(), strict=True)
                ],
                "values": np.round(grid.values, 4).tolist(),
            }
        )
        + "\n"
    )


def _address_ticks(grid: HeatGrid) -> tuple[list[float], list[str]]:
    """Y ticks: each area's start, and the end of the last one."""
    areas = grid.areas
    positions = [float(o) for o in areas.offsets.tolist()] + [float(areas.total)]
    labels = [f"{a:#x}" for a in areas.starts.tolist()] + [f"{int(areas.ends[-1]):#x}"]
    return positions, labels


def heatmap_figure(
    snapshots: Iterable[Snapshot],
    *,
    width: int = 400,
    height: int = 200,
    target: tuple[int, int, int] | None = None,
    max_nr_accesses: int | None = None,
    dpi: int = 100,
) -> Any:
    """A matplotlib ``Figure`` of the heatmap: ``width`` time bins by ``height`` address bins.

    Time (seconds since the first snapshot) runs along x, the compacted
    address axis along y with each area's start address as a tick.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # type: ignore[import-untyped,unused-ignore]
        from matplotlib.figure import Figure  # type: ignore[import-untyped,unused-ignore]
    except ImportError as exc:
        raise KdamonError(
            "PNG heatmaps need matplotlib: install it with `pip install 'kdamon[plot]'` (or `pip install matplotlib`)"
        ) from exc
    chosen = select_target(snapshots, target)
    grid = heat_grid(chosen, time_bins=width, addr_bins=height, max_nr_accesses=max_nr_accesses)
    origin = int(grid.time_edges_ns[0])
    duration = (int(grid.time_edges_ns[-1]) - origin) / 1e9
    figure = Figure(figsize=(10, 6), dpi=dpi)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = axes.imshow(
        grid.values.T,
        origin="lower",
        aspect="auto",
        cmap="inferno",
        vmin=0.0,
        vmax=1.0,
        interpolation="nearest",
        extent=(0.0, duration, 0.0, float(grid.areas.total)),
    )
    positions, labels = _address_ticks(grid)
    axes.set_yticks(positions, labels)
    for position in positions[1:-1]:
        axes.axhline(position, color="cyan", linewidth=0.6)
    kd, ctx, tgt = grid.target
    axes.set_title(f"kdamond {kd} context {ctx} target {tgt}: {grid.nr_snapshots} snapshots")
    axes.set_xlabel("time (s)")
    axes.set_ylabel("address (monitored areas, gaps removed)")
    colorbar = figure.colorbar(image, ax=axes)
    colorbar.set_label(f"nr_accesses / {grid.max_nr_accesses}")
    figure.tight_layout()
    return figure


def write_heatmap_png(
    path: str | Path,
    snapshots: Iterable[Snapshot],
    *,
    width: int = 400,
    height: int = 200,
    target: tuple[int, int, int] | None = None,
    max_nr_accesses: int | None = None,
    dpi: int = 100,
) -> None:
    """Draw the heatmap (see ``heatmap_figure``) into a PNG file, which an error leaves as it was."""
    figure = heatmap_figure(
        snapshots, width=width, height=height, target=target, max_nr_accesses=max_nr_accesses, dpi=dpi
    )
    with Replacement(path) as out:
        figure.savefig(out.stream, format="png")
