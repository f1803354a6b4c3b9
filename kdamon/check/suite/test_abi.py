"""ABI presence by version: the files, modes and defaults a kernel of its release should have."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kdamon.check.abi import (
    diff_entries,
    expected_defaults,
    expected_read_only,
    expected_tree,
    expected_tried_region,
)
from kdamon.check.emit import NOTE
from kdamon.check.harness import RawTree, calibrate, observe
from kdamon.kernel.sysfs import SysfsDriver
from kdamon.model import Context, Kdamond, Region, Scheme, Target
from kdamon.testing.workloads import Workload

Version = tuple[int, int]
RecordProperty = Callable[[str, object], None]

# Defaults and modes come from kdamon's sysfs schema (kdamon.check.abi).  Files not checked for a
# default besides counts and lists: nr_* values (the walk set them to 1), layer-dependent types.
NO_DEFAULT = ("core_filters/N/type", "ops_filters/N/type")


def _version_text(version: Version) -> str:
    return f"{version[0]}.{version[1]}"


@pytest.fixture(scope="module")
def tree(raw: RawTree) -> tuple[dict[str, int], dict[str, str]]:
    """Every entry of a kdamond directory with one of each numbered child, and the files' values."""
    try:
        raw.write("kdamonds/nr_kdamonds", 1)
        raw.populate("kdamonds/0")
        entries = dict(raw.entries("kdamonds/0"))
        values = {}
        for path in entries:
            if not path.endswith("/"):
                concrete = "/".join("0" if part == "N" else part for part in path.split("/"))
                values[path] = raw.read(f"kdamonds/0/{concrete}")
    finally:
        raw.reset()
    return entries, values


def test_tree_complete(
    tree: tuple[dict[str, int], dict[str, str]], version: Version, record_property: RecordProperty
) -> None:
    """every sysfs file and directory of this kernel's release exists"""
    entries, _ = tree
    diff = diff_entries(expected_tree(version), entries)
    record_property(
        NOTE,
        f"{len(entries)} entries below kdamonds/<K>/, as expected for Linux {_version_text(version)}"
        if not diff.missing
        else "",
    )
    assert not diff.missing, f"missing for Linux {_version_text(version)}: {', '.join(diff.missing)}"


def test_tree_nothing_unexpected(tree: tuple[dict[str, int], dict[str, str]], version: Version) -> None:
    """no sysfs file or directory from a later release (or unknown to kdamon) exists"""
    diff = diff_entries(expected_tree(version), tree[0])
    assert not diff.unexpected, f"not expected in Linux {_version_text(version)}: {', '.join(diff.unexpected)}"


def test_file_modes(tree: tuple[dict[str, int], dict[str, str]], version: Version) -> None:
    """writable files are mode 0600 and read-only ones 0400"""
    read_only = expected_read_only(version)
    wrong = [
        f"{path} {mode:04o} (want {want:04o})"
        for path, mode in sorted(tree[0].items())
        if not path.endswith("/") and mode != (want := 0o400 if path in read_only else 0o600)
    ]
    assert not wrong, f"unexpected modes: {', '.join(wrong)}"


def test_defaults(tree: tuple[dict[str, int], dict[str, str]], version: Version) -> None:
    """every file reads its documented default right after its directory is created"""
    defaults = expected_defaults(version)
    wrong = [
        f"{path}={value!r} (want {want!r})"
        for path, value in sorted(tree[1].items())
        if not path.rsplit("/", 1)[-1].startswith("nr_")
        and not path.endswith(NO_DEFAULT)
        and (want := defaults.get(path)) is not None
        and value != want
    ]
    assert not wrong, f"unexpected defaults: {', '.join(wrong)}"


def test_avail_operations(tree: tuple[dict[str, int], dict[str, str]], need: Callable[[Version, str], None]) -> None:
    """avail_operations lists known operations sets, vaddr among them"""
    need((5, 19), "avail_operations")
    listed = tree[1].get("contexts/N/avail_operations", "").split()
    unknown = sorted(set(listed) - {"vaddr", "fvaddr", "paddr"})
    assert "vaddr" in listed and not unknown, f"avail_operations lists {listed}"


@pytest.mark.usefixtures("trace_keepalive")
def test_tried_region_files(
    damon_sysfs: SysfsDriver,
    raw: RawTree,
    hot_cold_workload: Workload,
    version: Version,
    need: Callable[[Version, str], None],
    record_property: RecordProperty,
) -> None:
    """a tried region directory has exactly the files of this kernel's release"""
    need((6, 2), "tried_regions/")
    layout = hot_cold_workload.layout
    cal = calibrate(layout)
    context = Context(
        intervals=cal.intervals, targets=(Target(pid=layout.pid, regions=(Region(*layout.span),)),), schemes=(Scheme(),)
    )
    seen: list[list[str]] = []

    def collect(index: int) -> None:
        base = f"kdamonds/{index}/contexts/0/schemes/0/tried_regions"
        for _ in range(4):  # up to 6.13 the kernel gives up after two apply intervals of wall time
            damon_sysfs.update_tried_regions(index)
            children = [p.removeprefix("N/") for p, _ in raw.entries(base) if p.startswith("N/") and p != "N/"]
            if children:
                seen.append([c for c in children if "/" not in c.rstrip("/")])
                return

    observe(damon_sysfs, Kdamond(contexts=(context,)), aggregations=4, at_aggregation=3, action=collect)
    assert seen and seen[0], "update_schemes_tried_regions produced no tried region directory"
    found = set(seen[0])
    diff = diff_entries(expected_tried_region(version), found)
    record_property(NOTE, f"{', '.join(sorted(found))}")
    assert diff.ok, f"missing {list(diff.missing)}, unexpected {list(diff.unexpected)}"
