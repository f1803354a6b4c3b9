"""The access view: filters, orders, the text table and the JSON line."""

from __future__ import annotations

import json

import pytest

from kdamon.errors import ConfigError
from kdamon.model.snapshot import Snapshot
from kdamon.report.access import RegionFilter, access_json, access_text, sort_regions
from kdamon.report.raw import raw_json

MIB = 1 << 20
BASE = 0x7F0000000000
# hot 8 MiB (20/20, age 3 s), cold 64 MiB (0, age 50 s), a warm page (3/20, age 200 ms)
SNAP = Snapshot.of_rows(
    5_000_000_000,
    1,
    0,
    2,
    [
        (BASE, BASE + 8 * MIB, 20, 30),
        (BASE + 8 * MIB, BASE + 72 * MIB, 0, 500),
        (BASE + 72 * MIB, BASE + 72 * MIB + 4096, 3, 2),
    ],
    5000,
    100000,
)


def starts(snapshot: Snapshot) -> list[int]:
    return snapshot.regions["start"].tolist()  # type: ignore[no-any-return]


def test_filters() -> None:
    assert starts(RegionFilter.parse(access="10%-max").apply(SNAP)) == [BASE, BASE + 72 * MIB]
    assert starts(RegionFilter.parse(access="0-0").apply(SNAP)) == [BASE + 8 * MIB]
    assert starts(RegionFilter.parse(access="min-50%").apply(SNAP)) == [BASE + 8 * MIB, BASE + 72 * MIB]
    assert starts(RegionFilter.parse(age="10s-max").apply(SNAP)) == [BASE + 8 * MIB]
    assert starts(RegionFilter.parse(age="min-3").apply(SNAP)) == [BASE, BASE + 72 * MIB]  # plain: seconds
    assert starts(RegionFilter.parse(min_size="1M").apply(SNAP)) == [BASE, BASE + 8 * MIB]
    clipped = RegionFilter.parse(address=f"{BASE + 4 * MIB:#x}-{BASE + 12 * MIB:#x}").apply(SNAP)
    assert clipped.regions.tolist() == [
        (BASE + 4 * MIB, BASE + 8 * MIB, 20, 30),
        (BASE + 8 * MIB, BASE + 12 * MIB, 0, 500),
    ]
    assert SNAP.regions["start"][0] == BASE, "filtering must not change the snapshot it was given"


@pytest.mark.parametrize(
    "options",
    [{"access": "5"}, {"access": "x-max"}, {"age": "1parsec-max"}, {"address": "0x2000-0x1000"}, {"min_size": "4KB"}],
)
def test_bad_filters_are_refused(options: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        RegionFilter.parse(**options)


def test_orders() -> None:
    assert starts(sort_regions(SNAP, "hot")) == [BASE, BASE + 72 * MIB, BASE + 8 * MIB]
    assert starts(sort_regions(SNAP, "age")) == [BASE + 8 * MIB, BASE, BASE + 72 * MIB]
    assert sort_regions(SNAP, "address") is SNAP


def test_text_view() -> None:
    text = access_text(SNAP, title="sysfs:1 target 2", limit=2)
    lines = text.splitlines()
    assert lines[0] == "sysfs:1 target 2: 3 regions, 72MiB; sample 5ms, aggr 100ms"
    assert "20/20 100%" in lines[2] and lines[2].split()[-1] == "3s"
    assert lines[4] == "  ... 1 more regions"
    assert any(line.startswith("total 72MiB: hot 8MiB (11%), warm 4KiB (0%), cold 64MiB (89%)") for line in lines)
    assert any("90-100%" in line and "8MiB" in line for line in lines)
    assert any("10s-1m" in line and "64MiB" in line for line in lines)


def test_json_view_extends_the_raw_schema() -> None:
    view = json.loads(access_json(SNAP, extra={"kdamond": "sysfs:1"}))
    raw = json.loads(raw_json([SNAP]))
    assert {k: view[k] for k in raw} == raw
    assert (view["sample_us"], view["aggr_us"], view["kdamond"]) == (5000, 100000, "sysfs:1")
    summary = view["summary"]
    assert (summary["hot_bytes"], summary["cold_bytes"]) == (8 * MIB, 64 * MIB)
    assert sum(b["bytes"] for b in summary["temperature"]) == summary["total_bytes"]
    hot_only = json.loads(access_json(SNAP, region_filter=RegionFilter.parse(access="50%-max")))
    assert [r["start"] for r in hot_only["regions"]] == [BASE] and hot_only["summary"]["total_bytes"] == 8 * MIB
