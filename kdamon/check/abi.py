"""The DAMON sysfs ABI a kernel should offer for its release.

The table follows the version tags of ``damon-abi.md`` (§1.1-1.3): every
entry is a path below one kdamond directory (``kdamonds/<K>/``), with ``N``
standing for any numbered child directory, and the first release that has
it (and, for entries that were removed, the first release without it).
Directories end with ``/``.  A kernel's expected set is derived from its
release string (``uname -r``), then compared with what the tree shows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import attrs

__all__ = [
    "KEYWORDS",
    "TREE",
    "TRIED_REGION",
    "AbiDiff",
    "Entry",
    "diff_entries",
    "expected_keywords",
    "expected_tree",
    "expected_tried_region",
    "parse_release",
]

Version = tuple[int, int]


@attrs.frozen
class Entry:
    path: str
    since: Version
    until: Version | None = None  # first release without it

    def present_in(self, version: Version) -> bool:
        return self.since <= version and (self.until is None or version < self.until)


def _entries(since: Version, base: str, names: str) -> list[Entry]:
    return [Entry(f"{base}{name}", since) for name in names.split()]


_V = {
    "5.18": (5, 18), "5.19": (5, 19), "6.2": (6, 2), "6.3": (6, 3), "6.6": (6, 6), "6.7": (6, 7),
    "6.8": (6, 8), "6.9": (6, 9), "6.11": (6, 11), "6.14": (6, 14), "6.15": (6, 15), "6.16": (6, 16),
    "6.17": (6, 17), "6.18": (6, 18), "6.19": (6, 19), "7.0": (7, 0), "7.1": (7, 1), "7.2": (7, 2),
    "7.3": (7, 3),
}  # fmt: skip


def _filter_dir(base: str, since: Version) -> list[Entry]:
    """A filters directory (``filters/``, ``core_filters/``, ``ops_filters/``) and one filter."""
    f = f"{base}N/"
    return [
        Entry(base, since),
        Entry(f"{base}nr_filters", since),
        Entry(f, since),
        *_entries(max(since, _V["6.3"]), f, "type matching memcg_path"),
        *_entries(max(since, _V["6.6"]), f, "addr_start addr_end damon_target_idx"),
        Entry(f"{f}allow", max(since, _V["6.14"])),
        *_entries(max(since, _V["6.15"]), f, "min max"),
    ]


def _tree() -> tuple[Entry, ...]:
    v = _V
    ctx = "contexts/N/"
    attrs_ = f"{ctx}monitoring_attrs/"
    tgt = f"{ctx}targets/N/"
    s = f"{ctx}schemes/N/"
    q = f"{s}quotas/"
    g = f"{q}goals/N/"
    probe = f"{attrs_}probes/N/"
    entries = [
        *_entries(v["5.18"], "", "state pid contexts/ contexts/nr_contexts"),
        Entry("refresh_ms", v["6.17"]),
        Entry(ctx, v["5.18"]),
        *_entries(v["5.18"], ctx, "operations monitoring_attrs/ targets/ schemes/"),
        Entry(f"{ctx}avail_operations", v["5.19"]),
        Entry(f"{ctx}addr_unit", v["6.18"]),
        Entry(f"{ctx}pause", v["7.2"]),
        *_entries(v["5.18"], attrs_, "intervals/ intervals/sample_us intervals/aggr_us intervals/update_us"),
        *_entries(v["5.18"], attrs_, "nr_regions/ nr_regions/min nr_regions/max"),
        *_entries(v["6.15"], f"{attrs_}intervals/intervals_goal/", "access_bp aggrs min_sample_us max_sample_us"),
        Entry(f"{attrs_}intervals/intervals_goal/", v["6.15"]),
        *_entries(v["7.3"], attrs_, "probes/ probes/nr_probes probes/N/ probes/N/weight"),
        *_entries(v["7.3"], probe, "filters/ filters/nr_filters filters/N/"),
        *_entries(v["7.3"], f"{probe}filters/N/", "type matching allow path"),
        *_entries(v["5.18"], f"{ctx}targets/", "nr_targets N/"),
        *_entries(v["5.18"], tgt, "pid_target regions/ regions/nr_regions regions/N/ regions/N/start regions/N/end"),
        Entry(f"{tgt}obsolete_target", v["6.19"]),
        *_entries(v["5.18"], f"{ctx}schemes/", "nr_schemes N/"),
        *_entries(v["5.18"], s, "action access_pattern/ quotas/ watermarks/ stats/"),
        Entry(f"{s}apply_interval_us", v["6.7"]),
        Entry(f"{s}target_nid", v["6.11"]),
        *[Entry(f"{s}access_pattern/{k}/", v["5.18"]) for k in ("sz", "nr_accesses", "age")],
        *[Entry(f"{s}access_pattern/{k}/{m}", v["5.18"]) for k in ("sz", "nr_accesses", "age") for m in ("min", "max")],
        *_entries(v["5.18"], q, "ms bytes reset_interval_ms weights/"),
        *_entries(v["5.18"], f"{q}weights/", "sz_permil nr_accesses_permil age_permil"),
        Entry(f"{q}effective_bytes", v["6.9"]),
        Entry(f"{q}goal_tuner", v["7.1"]),
        *_entries(v["7.2"], q, "fail_charge_num fail_charge_denom"),
        *_entries(v["6.8"], f"{q}goals/", "nr_goals N/"),
        Entry(f"{q}goals/", v["6.8"]),
        *_entries(v["6.8"], g, "target_value current_value"),
        Entry(f"{g}target_metric", v["6.9"]),
        Entry(f"{g}nid", v["6.16"]),
        Entry(f"{g}path", v["6.19"]),
        *_entries(v["5.18"], f"{s}watermarks/", "metric interval_us high mid low"),
        *_filter_dir(f"{s}filters/", v["6.3"]),
        *_filter_dir(f"{s}core_filters/", v["6.15"]),
        *_filter_dir(f"{s}ops_filters/", v["6.15"]),
        *_entries(v["6.17"], f"{s}dests/", "nr_dests N/ N/id N/weight"),
        Entry(f"{s}dests/", v["6.17"]),
        *_entries(v["5.18"], f"{s}stats/", "nr_tried sz_tried nr_applied sz_applied qt_exceeds"),
        Entry(f"{s}stats/sz_ops_filter_passed", v["6.14"]),
        *_entries(v["7.0"], f"{s}stats/", "nr_snapshots max_nr_snapshots"),
        Entry(f"{s}tried_regions/", v["6.2"]),
        Entry(f"{s}tried_regions/total_bytes", v["6.6"]),
    ]
    return tuple(entries)


TREE: tuple[Entry, ...] = _tree()
"""A kdamond directory with one of every numbered child (as ``nr_* = 1`` creates)."""

TRIED_REGION: tuple[Entry, ...] = (
    *_entries(_V["6.2"], "", "start end nr_accesses age"),
    Entry("sz_filter_passed", _V["6.14"]),
    Entry("probes/", _V["7.3"]),
)
"""One ``tried_regions/<R>/`` directory (``probes/`` is there even without probes)."""

KEYWORDS: tuple[Entry, ...] = (
    *_entries(_V["5.18"], "", "on off update_schemes_stats"),
    Entry("commit", _V["5.19"]),
    *_entries(_V["6.2"], "", "update_schemes_tried_regions clear_schemes_tried_regions"),
    Entry("update_schemes_tried_bytes", _V["6.6"]),
    Entry("commit_schemes_quota_goals", _V["6.8"]),
    Entry("update_schemes_effective_quotas", _V["6.9"]),
    Entry("update_tuned_intervals", _V["6.15"]),
)
"""``kdamonds/<K>/state`` keywords (§3)."""

_RELEASE = re.compile(r"^(\d+)\.(\d+)")


def parse_release(release: str) -> Version:
    """``(major, minor)`` of a ``uname -r`` string such as ``6.12.117+deb13-cloud-amd64``."""
    m = _RELEASE.match(release.strip())
    if m is None:
        raise ValueError(f"cannot read a kernel version from the release string {release!r}")
    return int(m.group(1)), int(m.group(2))


def _expected(table: Iterable[Entry], version: Version) -> frozenset[str]:
    return frozenset(e.path for e in table if e.present_in(version))


def expected_tree(version: Version) -> frozenset[str]:
    return _expected(TREE, version)


def expected_tried_region(version: Version) -> frozenset[str]:
    return _expected(TRIED_REGION, version)


def expected_keywords(version: Version) -> tuple[str, ...]:
    return tuple(e.path for e in KEYWORDS if e.present_in(version))


@attrs.frozen
class AbiDiff:
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.missing and not self.unexpected


def diff_entries(expected: Iterable[str], observed: Iterable[str]) -> AbiDiff:
    exp, obs = set(expected), set(observed)
    return AbiDiff(tuple(sorted(exp - obs)), tuple(sorted(obs - exp)))
