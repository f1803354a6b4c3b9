from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from kdamon.errors import KdamonError
from kdamon.testing.workloads import PAGE, Layout, start


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def test_hot_cold_layout_and_activity() -> None:
    with start("hot_cold", sizes=[4 * PAGE, 16 * PAGE]) as work:
        layout = work.layout
        assert layout.pid == work.pid and layout.kind == "hot_cold"
        (hot, cold) = layout.areas
        assert (hot[1] - hot[0], cold[1] - cold[0]) == (4 * PAGE, 16 * PAGE)
        assert hot[1] + PAGE == cold[0], "a guard page separates the areas"
        assert layout.span == (hot[0], cold[1])
        assert layout.pass_us > 0
        before = _cpu_ticks(work.pid)
        deadline = time.monotonic() + 10
        while _cpu_ticks(work.pid) == before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _cpu_ticks(work.pid) > before, "the workload is not running"
        maps = Path(f"/proc/{work.pid}/maps").read_text()
        assert f"{hot[0]:x}-{hot[1]:x}" in maps
    assert not os.path.exists(f"/proc/{layout.pid}"), "the process was not reaped"


def test_sizes_are_rounded_up_to_pages() -> None:
    with start("stairs", sizes=[1, PAGE + 1]) as work:
        assert [b - a for a, b in work.layout.areas] == [PAGE, 2 * PAGE]


def test_unknown_kind() -> None:
    with pytest.raises(KdamonError, match="unknown workload"):
        start("sawtooth")


def test_failed_start_is_reported() -> None:
    with pytest.raises(KdamonError, match="did not start"):
        start("hot_cold", sizes=[0, PAGE])


@pytest.mark.parametrize(
    "kind,expected",
    [("hot_cold", [0, 0, 0, 0, 0, 0, 0]), ("stairs", [0, 1, 2, 0, 1, 2, 0]), ("zigzag", [0, 1, 2, 1, 0, 1, 2])],
)
def test_hot_area_schedule(kind: str, expected: list[int]) -> None:
    layout = Layout(kind, 1, ((0, PAGE), (2 * PAGE, 3 * PAGE), (4 * PAGE, 5 * PAGE)), 2.0, 100.0, 1.0)
    assert [layout.hot_area(100.0 + 2.0 * step + 0.5) for step in range(7)] == expected
    assert layout.step_phase(101.0) == pytest.approx(0.5)


def test_stripes_write_the_even_areas() -> None:
    layout = Layout("stripes", 1, tuple((2 * i * PAGE, (2 * i + 1) * PAGE) for i in range(5)), 0.0, 100.0, 1.0)
    assert layout.hot_areas(150.0) == (0, 2, 4)
    assert Layout("stairs", 1, layout.areas, 2.0, 100.0, 1.0).hot_areas(102.5) == (1,)
    with start("stripes", sizes=[PAGE] * 4) as work:
        assert work.layout.kind == "stripes" and len(work.layout.areas) == 4 and work.layout.step_s == 0.0


def test_layout_json_round_trip() -> None:
    layout = Layout("zigzag", 42, ((4096, 8192), (12288, 16384)), 1.0, 5.5, 12.5)
    assert Layout.from_json(layout.to_json()) == layout


def test_hot_and_cold_are_a_hot_cold_workloads_areas() -> None:
    areas = ((4096, 8192), (12288, 16384))
    assert (Layout("hot_cold", 1, areas, 0.0, 0.0, 1.0).hot, Layout("hot_cold", 1, areas, 0.0, 0.0, 1.0).cold) == areas
    with pytest.raises(KdamonError, match="no single hot and cold area"):
        _ = Layout("stairs", 1, areas, 1.0, 0.0, 1.0).hot
    uffd = Layout("hot_cold", 1, areas, 0.0, 0.0, 1.0, uffd=True)
    assert Layout.from_json(uffd.to_json()) == uffd
