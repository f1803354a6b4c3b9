"""What the running kernel's DAMON sysfs interface offers, by file presence only.

There is no version file, and probing by writing would disturb other users,
so features are read off the directories that exist.  A file can only be
seen where its parent directory exists (a scheme's files need some scheme
directory), so each feature is True, False, or None (no evidence yet).
State keywords are implied by the release evidence: the newest file seen
proves the kernel is at least that release.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from kdamon.kernel.sysfs_io import SysfsIO

__all__ = ["EVIDENCE", "KEYWORDS", "KEYWORD_EVIDENCE", "Features", "detect_features"]

# (release, kind of directory, entry): an entry that appeared in that release.
EVIDENCE: tuple[tuple[str, str, str], ...] = (
    ("5.19", "context", "avail_operations"),
    ("6.2", "scheme", "tried_regions"),
    ("6.3", "scheme", "filters"),
    ("6.6", "tried_regions", "total_bytes"),
    ("6.7", "scheme", "apply_interval_us"),
    ("6.8", "quotas", "goals"),
    ("6.9", "quotas", "effective_bytes"),
    ("6.9", "goal", "target_metric"),
    ("6.11", "scheme", "target_nid"),
    ("6.14", "filter", "allow"),
    ("6.14", "stats", "sz_ops_filter_passed"),
    ("6.15", "intervals", "intervals_goal"),
    ("6.15", "scheme", "core_filters"),
    ("6.15", "scheme", "ops_filters"),
    ("6.15", "filter", "min"),
    ("6.16", "goal", "nid"),
    ("6.17", "kdamond", "refresh_ms"),
    ("6.17", "scheme", "dests"),
    ("6.18", "context", "addr_unit"),
    ("6.19", "target", "obsolete_target"),
    ("6.19", "goal", "path"),
    ("7.0", "stats", "nr_snapshots"),
    ("7.0", "stats", "max_nr_snapshots"),
    ("7.1", "quotas", "goal_tuner"),
    ("7.2", "context", "pause"),
    ("7.2", "quotas", "fail_charge_num"),
    ("7.3", "monitoring_attrs", "probes"),
)

# State keywords and the release that introduced them.
KEYWORDS: tuple[tuple[str, str], ...] = (
    ("on", "5.18"),
    ("off", "5.18"),
    ("update_schemes_stats", "5.18"),
    ("commit", "5.19"),
    ("update_schemes_tried_regions", "6.2"),
    ("clear_schemes_tried_regions", "6.2"),
    ("update_schemes_tried_bytes", "6.6"),
    ("commit_schemes_quota_goals", "6.8"),
    ("update_schemes_effective_quotas", "6.9"),
    ("update_tuned_intervals", "6.15"),
)

# The entries that came with a state keyword: where any of them is seen missing,
# the kernel does not know the keyword (keywords not listed are as old as sysfs).
KEYWORD_EVIDENCE: dict[str, tuple[tuple[str, str], ...]] = {
    "commit": (("context", "avail_operations"),),
    "update_schemes_tried_regions": (("scheme", "tried_regions"),),
    "clear_schemes_tried_regions": (("scheme", "tried_regions"),),
    "update_schemes_tried_bytes": (("scheme", "tried_regions"), ("tried_regions", "total_bytes")),
    "commit_schemes_quota_goals": (("quotas", "goals"),),
    "update_schemes_effective_quotas": (("quotas", "effective_bytes"),),
    "update_tuned_intervals": (("intervals", "intervals_goal"),),
}

# Where each kind of directory lives below a kdamond directory
# ("*" = any numbered child, "{a,b}" = either name).
_KIND_GLOBS = {
    "kdamond": "",
    "context": "contexts/*",
    "monitoring_attrs": "contexts/*/monitoring_attrs",
    "intervals": "contexts/*/monitoring_attrs/intervals",
    "target": "contexts/*/targets/*",
    "scheme": "contexts/*/schemes/*",
    "quotas": "contexts/*/schemes/*/quotas",
    "goal": "contexts/*/schemes/*/quotas/goals/*",
    "filter": "contexts/*/schemes/*/{filters,core_filters,ops_filters}/*",
    "stats": "contexts/*/schemes/*/stats",
    "tried_regions": "contexts/*/schemes/*/tried_regions",
}


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


@attrs.frozen
class Features:
    """File-presence evidence about the kernel's DAMON sysfs interface."""

    kinds: dict[str, frozenset[str]]  # kind of directory -> entries seen in one
    avail_operations: tuple[str, ...] | None
    min_version: str | None  # the newest release whose files were seen
    state_keywords: tuple[str, ...]  # keywords proven by the evidence

    def has(self, kind: str, entry: str) -> bool | None:
        """Whether ``entry`` exists in directories of ``kind``; None if none exists yet."""
        seen = self.kinds.get(kind)
        return None if seen is None else entry in seen

    @property
    def layered_filters(self) -> bool | None:
        """``core_filters/`` and ``ops_filters/`` (6.15+)."""
        return self.has("scheme", "core_filters")

    @property
    def intervals_goal(self) -> bool | None:
        return self.has("intervals", "intervals_goal")

    @property
    def refresh_ms(self) -> bool | None:
        return self.has("kdamond", "refresh_ms")

    def knows(self, keyword: str) -> bool | None:
        """Whether the kernel knows state ``keyword``: False once an entry that came
        with it is seen missing, None while the directories that would show it are absent."""
        seen = [self.has(kind, entry) for kind, entry in KEYWORD_EVIDENCE.get(keyword, ())]
        if False in seen:
            return False
        return None if None in seen else True

    def as_dict(self) -> dict[str, bool | None]:
        """Every known feature by ``kind/entry``."""
        return {f"{kind}/{entry}": self.has(kind, entry) for _, kind, entry in EVIDENCE}


def _matches(io: SysfsIO, base: Path, pattern: str) -> list[Path]:
    dirs = [base]
    for part in pattern.split("/") if pattern else []:
        nxt: list[Path] = []
        for d in dirs:
            if part == "*":
                nxt += [d / n for n in io.listdir(d) if n.isdigit()]
            else:
                names = part.strip("{}").split(",")
                nxt += [d / n for n in names if io.is_dir(d / n)]
        dirs = nxt
    return dirs


def detect_features(io: SysfsIO, kdamonds_dir: Path) -> Features:
    """Inspect every existing kdamond directory under ``kdamonds_dir`` (reads only)."""
    kdirs = []
    if io.is_dir(kdamonds_dir):
        kdirs = [kdamonds_dir / str(n) for n in io.numeric_subdirs(kdamonds_dir)]
    kinds: dict[str, frozenset[str]] = {}
    for kind, pattern in _KIND_GLOBS.items():
        entries: set[str] = set()
        found = False
        for kdir in kdirs:
            for d in _matches(io, kdir, pattern):
                found = True
                entries.update(io.listdir(d))
        if found:
            kinds[kind] = frozenset(entries)
    avail = None
    for kdir in kdirs:
        for ctx in _matches(io, kdir, "contexts/*"):
            if io.exists(ctx / "avail_operations"):
                avail = tuple(io.read_str(ctx / "avail_operations").split())
                break
        if avail is not None:
            break
    seen = [rel for rel, kind, entry in EVIDENCE if entry in kinds.get(kind, frozenset())]
    if kdirs:
        seen.append("5.18")
    newest = max(seen, key=_version) if seen else None
    keywords = tuple(
        kw for kw, rel in KEYWORDS if newest is not None and _version(rel) <= _version(newest)
    )
    return Features(kinds, avail, newest, keywords)
