"""ABI presence by version: the files, modes and defaults a kernel of its release should have."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kdamon.check.abi import diff_entries, expected_tree, expected_tried_region
from kdamon.check.emit import NOTE
from kdamon.check.harness import RawTree, calibrate, observe
from kdamon.check.workloads import Workload
from kdamon.kernel.sysfs import SysfsDriver
from kdamon.model import Context, Kdamond, Region, Scheme, Target

Version = tuple[int, int]
RecordProperty = Callable[[str, object], None]

# Files that hold something else than 0 right after their directory was created (§2).
DEFAULTS = {
    "state": "off", "pid": "-1", "operations": "vaddr", "addr_unit": "1", "pause": "N",
    "sample_us": "5000", "aggr_us": "100000", "update_us": "60000000", "nr_regions/min": "10",
    "nr_regions/max": "1000", "action": "stat", "target_nid": "-1", "goal_tuner": "consist",
    "target_metric": "user_input", "watermarks/metric": "none", "matching": "N", "allow": "N",
    "obsolete_target": "N", "memcg_path": "", "path": "",
}  # fmt: skip
# Files not checked for a default: counts that the walk set to 1, lists, layer-dependent types.
NO_DEFAULT = ("avail_operations", "core_filters/N/type", "ops_filters/N/type")
READ_ONLY = ("pid", "avail_operations", "effective_bytes")


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


def test_tree_complete(tree: tuple[dict[str, int], dict[str, str]], version: Version, record_property: RecordProperty) -> None:
    """every sysfs file and directory of this kernel's release exists"""
    entries, _ = tree
    diff = diff_entries(expected_tree(version), entries)
    record_property(NOTE, f"{len(entries)} entries below kdamonds/<K>/, as expected for Linux {_version_text(version)}"
                    if not diff.missing else "")
    assert not diff.missing, f"missing for Linux {_version_text(version)}: {', '.join(diff.missing)}"


def test_tree_nothing_unexpected(tree: tuple[dict[str, int], dict[str, str]], version: Version) -> None:
    """no sysfs file or directory from a later release (or unknown to kdamon) exists"""
    diff = diff_entries(expected_tree(version), tree[0])
    assert not diff.unexpected, f"not expected in Linux {_version_text(version)}: {', '.join(diff.unexpected)}"


def _read_only(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    if "/stats/" in f"/{path}":
        return name != "max_nr_snapshots"
    return name in READ_ONLY or "/tried_regions/" in f"/{path}"


def test_file_modes(tree: tuple[dict[str, int], dict[str, str]]) -> None:
    """writable files are mode 0600 and read-only ones 0400"""
    wrong = [
        f"{path} {mode:04o} (want {want:04o})"
        for path, mode in sorted(tree[0].items())
        if not path.endswith("/") and mode != (want := 0o400 if _read_only(path) else 0o600)
    ]
    assert not wrong, f"unexpected modes: {', '.join(wrong)}"


def _default(path: str) -> str | None:
    name = path.rsplit("/", 1)[-1]
    if name.startswith("nr_") or any(path.endswith(skip) for skip in NO_DEFAULT):
        return None
    for key, value in DEFAULTS.items():
        if path == key or path.endswith("/" + key):
            return value
    if path.endswith("filters/N/type"):
        return "anon"
    return "0"


def test_defaults(tree: tuple[dict[str, int], dict[str, str]]) -> None:
    """every file reads its documented default right after its directory is created"""
    wrong = [
        f"{path}={value!r} (want {want!r})"
        for path, value in sorted(tree[1].items())
        if (want := _default(path)) is not None and value != want
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
    context = Context(intervals=cal.intervals, targets=(Target(pid=layout.pid, regions=(Region(*layout.span),)),),
                      schemes=(Scheme(),))
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
