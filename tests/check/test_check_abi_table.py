from __future__ import annotations

import itertools

import pytest

from kdamon.check.abi import (
    KEYWORDS,
    TREE,
    diff_entries,
    expected_defaults,
    expected_keywords,
    expected_read_only,
    expected_tree,
    expected_tried_region,
    parse_release,
)


@pytest.mark.parametrize(
    "release,version",
    [
        ("6.12.117+deb13-cloud-amd64", (6, 12)),
        ("7.3.4+deb13-cloud-amd64", (7, 3)),
        ("6.1.0", (6, 1)),
        ("5.19.0-rc1", (5, 19)),
    ],
)
def test_parse_release(release: str, version: tuple[int, int]) -> None:
    assert parse_release(release) == version


def test_parse_release_rejects_junk() -> None:
    with pytest.raises(ValueError, match="release string"):
        parse_release("linux")


def test_tree_by_version() -> None:
    v61, v612, v73 = expected_tree((6, 1)), expected_tree((6, 12)), expected_tree((7, 3))
    scheme = "contexts/N/schemes/N/"
    assert f"{scheme}tried_regions/" not in v61 and f"{scheme}tried_regions/" in v612
    assert f"{scheme}filters/N/damon_target_idx" in v612 and f"{scheme}filters/N/allow" not in v612
    assert f"{scheme}core_filters/N/allow" in v73 and f"{scheme}core_filters/" not in v612
    assert "refresh_ms" in v73 and "refresh_ms" not in v612
    assert "contexts/N/monitoring_attrs/probes/N/filters/N/path" in v73
    assert f"{scheme}quotas/goals/N/target_metric" in v612 and f"{scheme}quotas/goals/N/nid" not in v612


def test_every_directory_of_an_expected_file_is_expected() -> None:
    for version in [(5, 18), (6, 1), (6, 12), (6, 17), (7, 3)]:
        entries = expected_tree(version)
        for path in entries:
            parts = path.rstrip("/").split("/")
            for depth in range(1, len(parts)):
                assert "/".join(parts[:depth]) + "/" in entries, f"{path} in {version} without its parent"


def test_entries_only_appear_with_time() -> None:
    versions = [(5, 18), (5, 19), (6, 2), (6, 6), (6, 12), (6, 15), (6, 19), (7, 0), (7, 3)]
    for older, newer in itertools.pairwise(versions):
        assert expected_tree(older) <= expected_tree(newer)
        assert set(expected_keywords(older)) <= set(expected_keywords(newer))
    assert len({e.path for e in TREE}) == len(TREE), "duplicate entries in the table"


def test_keywords_by_version() -> None:
    assert expected_keywords((5, 18)) == ("on", "off", "update_schemes_stats")
    assert "update_schemes_tried_bytes" not in expected_keywords((6, 5))
    assert "update_schemes_effective_quotas" in expected_keywords((6, 12))
    assert "update_tuned_intervals" not in expected_keywords((6, 12))
    assert expected_keywords((7, 3)) == tuple(e.path for e in KEYWORDS)


def test_tried_region_files() -> None:
    assert expected_tried_region((6, 12)) == {"start", "end", "nr_accesses", "age"}
    assert expected_tried_region((7, 3)) == {"start", "end", "nr_accesses", "age", "sz_filter_passed", "probes/"}


def test_diff_entries() -> None:
    diff = diff_entries({"a", "b", "c"}, ["b", "c", "d"])
    assert diff.missing == ("a",) and diff.unexpected == ("d",) and not diff.ok
    assert diff_entries({"a"}, ["a"]).ok


def test_defaults_and_read_only_files() -> None:
    d612, d73 = expected_defaults((6, 12)), expected_defaults((7, 3))
    scheme = "contexts/N/schemes/N/"
    assert d612["contexts/N/operations"] == "vaddr" and d612[f"{scheme}target_nid"] == "-1"
    assert d612[f"{scheme}filters/N/matching"] == "N" and f"{scheme}quotas/goal_tuner" not in d612
    assert d73[f"{scheme}quotas/goal_tuner"] == "consist" and d73["contexts/N/targets/N/obsolete_target"] == "N"
    assert "contexts/nr_contexts" not in d612 and "contexts/N/avail_operations" not in d612
    read_only = expected_read_only((7, 3))
    assert {"pid", f"{scheme}stats/nr_tried", f"{scheme}tried_regions/total_bytes"} <= read_only
    assert not {"state", f"{scheme}stats/max_nr_snapshots"} & read_only
