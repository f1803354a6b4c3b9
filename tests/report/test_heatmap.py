"""Terminal and PNG heatmaps show where and when the accesses were."""

from __future__ import annotations

import io
import random
from pathlib import Path

import attrs
import pytest

from kdamon.errors import ConfigError
from kdamon.model.snapshot import Snapshot, regions_array
from kdamon.report.grid import heat_grid
from kdamon.report.heatmap import LEVELS, heatmap_text, write_heatmap
from report_data import AREA_A, AREA_B, AREA_SIZE, MIB, two_area_snapshot


def map_rows(text: str) -> list[str]:
    """The cells of each map row (between the two '|')."""
    return [line.split("|")[1] for line in text.splitlines() if line.count("|") == 2 and line.rstrip().endswith("|")]


def test_the_hot_band_has_the_densest_characters(moving_hot_band: list[Snapshot]) -> None:
    rows = map_rows(heatmap_text(moving_hot_band, width=80, height=5))
    assert len(rows) == 5
    # 80 MiB of monitored space in 80 columns: one column per MiB, area B from column 40
    phase_one = " " * 10 + "@" * 10 + " " * 60
    phase_two = " " * 40 + "+" * 5 + " " * 35
    assert rows[0] == rows[1] == phase_one
    assert rows[3] == rows[4] == phase_two
    # row 2 averages one snapshot of each phase: 0.5 and 0.25 of the maximum
    assert rows[2] == " " * 10 + "+" * 10 + " " * 20 + "-" * 5 + " " * 35


def test_gaps_between_areas_are_removed_and_labelled(moving_hot_band: list[Snapshot]) -> None:
    text = heatmap_text(moving_hot_band, width=80, height=5)
    assert f"area 0: [{AREA_A:#x}, {AREA_A + AREA_SIZE:#x})" in text
    assert f"area 1: [{AREA_B:#x}, {AREA_B + AREA_SIZE:#x})" in text
    assert "2 monitored area(s)" in text
    axis = next(line for line in text.splitlines() if line.lstrip().startswith("+"))
    assert axis.strip()[1 + 40] == "|"  # area B starts at column 40
    assert f"{AREA_A:#x}" in text and f"{AREA_B + AREA_SIZE:#x}" in text


def test_time_labels_and_normalisation(moving_hot_band: list[Snapshot]) -> None:
    text = heatmap_text(moving_hot_band, width=40, height=5)
    labels = [
        line.split("|")[0].strip() for line in text.splitlines() if line.rstrip().endswith("|") and line.count("|") == 2
    ]
    assert labels == ["0.000", "0.180", "0.360", "0.540", "0.720"]
    assert "10 snapshots over 0.900 s" in text
    assert "nr_accesses / 20" in text
    halved = map_rows(heatmap_text(moving_hot_band, width=80, height=5, max_nr_accesses=10))
    assert halved[4][40:45] == "@" * 5


def test_colour_only_when_asked(moving_hot_band: list[Snapshot]) -> None:
    plain, coloured = io.StringIO(), io.StringIO()
    write_heatmap(plain, moving_hot_band, width=80, height=5)
    write_heatmap(coloured, moving_hot_band, width=80, height=5, color=True)
    assert "\x1b[" not in plain.getvalue()
    assert f"\x1b[48;5;226m{LEVELS[-1]}" in coloured.getvalue()
    assert "\x1b[48;5;16m " in coloured.getvalue()


def test_one_target_at_a_time() -> None:
    snapshots = [
        two_area_snapshot(0, [], target_idx=0),
        two_area_snapshot(1, [(AREA_A, AREA_A + MIB, 20)], target_idx=1),
    ]
    first = map_rows(heatmap_text(snapshots, width=80, height=1))
    second = map_rows(heatmap_text(snapshots, width=80, height=1, target=(0, 0, 1)))
    assert first == [" " * 80]
    assert second == ["@" + " " * 79]
    with pytest.raises(ConfigError, match="the record has 0/0/0, 0/0/1"):
        heatmap_text(snapshots, target=(0, 0, 7))
    with pytest.raises(ConfigError, match="no snapshots"):
        heatmap_text([])
    empty = Snapshot(0, 0, 0, 0, regions_array([], [], [], []), 5000, 100000)
    with pytest.raises(ConfigError, match="no regions"):
        heatmap_text([empty])


def test_a_single_snapshot_is_one_row() -> None:
    rows = map_rows(heatmap_text([two_area_snapshot(0, [(AREA_B, AREA_B + AREA_SIZE, 20)])], width=8, height=10))
    assert rows == ["    @@@@"]


def irregular() -> list[Snapshot]:
    """Snapshots in bursts, as a loaded engine takes them: A hot at 0, 0.1 and 0.2 s, B hot at 3.0 s,
    B half-hot at 3.1 s, A hot again at 9.0 s."""
    hot_a = [(AREA_A, AREA_A + AREA_SIZE, 20)]
    hot_b, half_b = [(AREA_B, AREA_B + AREA_SIZE, 20)], [(AREA_B, AREA_B + AREA_SIZE, 10)]
    times = [(0.0, hot_a), (0.1, hot_a), (0.2, hot_a), (3.0, hot_b), (3.1, half_b), (9.0, hot_a)]
    return [attrs.evolve(two_area_snapshot(0, hot), time_ns=1_000_000_000 + round(s * 1e9)) for s, hot in times]


def test_irregular_snapshots_leave_no_empty_bins() -> None:
    snapshots = irregular()
    shuffled = random.Random(1).sample(snapshots, len(snapshots))
    for given in (snapshots, shuffled):
        grid = heat_grid(given, time_bins=6, addr_bins=2)  # bins of 1.5 s; columns: area A, area B
        # empty bins hold the latest snapshot before them: 0.2 s in bin 1, 3.1 s (not the mean of bin 2) in 3 and 4
        assert grid.values.tolist() == [[1.0, 0.0], [1.0, 0.0], [0.0, 0.75], [0.0, 0.5], [0.0, 0.5], [1.0, 0.0]]
        # the time axis runs from the first snapshot to just after the last: no bin lies before or after them
        assert (grid.time_edges_ns[0], grid.time_edges_ns[-1]) == (snapshots[0].time_ns, snapshots[-1].time_ns + 1)
    rows = map_rows(heatmap_text(snapshots, width=2, height=6))
    assert rows == ["@ ", "@ ", " #", " +", " +", "@ "]


def test_png_hot_band_is_brighter(moving_hot_band: list[Snapshot], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread

    from kdamon.report.heatmap import heatmap_figure, write_heatmap_png

    path = tmp_path / "heatmap.png"
    write_heatmap_png(path, moving_hot_band, width=10, height=80)
    image = imread(path)
    figure = heatmap_figure(moving_hot_band, width=10, height=80)
    (axes, _colorbar) = figure.axes
    height_px = image.shape[0]

    def brightness(seconds: float, compact_mib: float) -> float:
        x, y = axes.transData.transform((seconds, compact_mib * MIB))
        return float(image[height_px - round(y), round(x), :3].mean())

    hot, cold = brightness(0.2, 15), brightness(0.2, 30)
    assert hot > cold + 0.5
    assert brightness(0.8, 42) > brightness(0.8, 60) + 0.2  # the half-hot band of phase two
    assert axes.get_xlabel() == "time (s)"
    assert "address" in axes.get_ylabel()
    assert [t.get_text() for t in axes.get_yticklabels()][:2] == [f"{AREA_A:#x}", f"{AREA_B:#x}"]


def test_png_has_no_blank_columns_between_irregular_snapshots(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread

    from kdamon.report.heatmap import heatmap_figure, write_heatmap_png

    path = tmp_path / "heatmap.png"
    write_heatmap_png(path, irregular(), width=6, height=2)
    image = imread(path)
    (axes, _colorbar) = heatmap_figure(irregular(), width=6, height=2).axes

    def brightness(seconds: float, compact_mib: float) -> float:
        x, y = axes.transData.transform((seconds, compact_mib * MIB))
        return float(image[image.shape[0] - round(y), round(x), :3].mean())

    # 2 s and 6 s fall between snapshots: A is still hot and B still cold, not blank (white)
    assert brightness(2.0, 20) > 0.5 and brightness(2.0, 60) < 0.1
    assert brightness(6.0, 20) < 0.1 and 0.2 < brightness(6.0, 60) < 0.9
