"""What the running kernel's DAMON sysfs interface offers, by file presence only.

There is no version file, and probing by writing would disturb other users,
so features are read off the directories that exist.  A file can only be
seen where its parent directory exists (a scheme's files need some scheme
directory), so each feature is True, False, or None (no evidence yet).
State keywords are implied by the release evidence: the newest file seen
proves the kernel is at least that release.
"""

from __future__ import annotations

import typing
from pathlib import Path

import attrs

from kdamon.kernel.sysfs_io import SysfsIO
from kdamon.kernel.sysfs_nodes import BASE, Dir, version, walk
from kdamon.kernel.sysfs_schema import KDAMOND, STATE

__all__ = ["EVIDENCE", "KEYWORDS", "KEYWORD_EVIDENCE", "Features", "detect_features"]


def _kinds() -> dict[str, tuple[Dir, tuple[str, ...]]]:
    """Each kind of directory and where it lives below a kdamond directory (``*``: any numbered child)."""
    where: dict[str, tuple[Dir, list[str]]] = {"kdamond": (KDAMOND, [""])}
    for placed in walk(KDAMOND):
        if isinstance(placed.node, Dir) and placed.node.kind is not None:
            pattern = "/".join("*" if part == "N" else part for part in placed.path.strip("/").split("/"))
            where.setdefault(placed.node.kind, (placed.node, []))[1].append(pattern)
    return {kind: (d, tuple(patterns)) for kind, (d, patterns) in where.items()}


_KINDS = _kinds()

EVIDENCE: tuple[tuple[str, str, str], ...] = tuple(
    sorted(
        {
            (entry.since, kind, entry.name)
            for kind, (d, _) in _KINDS.items()
            for entry in d.entries()
            if version(entry.since) > version(BASE)
        },
        key=lambda e: (version(e[0]), e[1], e[2]),
    )
)
"""(release, kind of directory, entry): an entry that appeared in that release."""

_KEYWORDS = STATE.keywords
KEYWORDS: tuple[tuple[str, str], ...] = tuple((k.name, k.since) for k in _KEYWORDS)
"""State keywords and the release that introduced them."""

KEYWORD_EVIDENCE: dict[str, tuple[tuple[str, str], ...]] = {
    k.name: tuple(typing.cast(tuple[str, str], tuple(e.split("/"))) for e in k.came_with)
    for k in _KEYWORDS
    if k.came_with
}
"""The entries that came with a state keyword: where any of them is seen missing,
the kernel does not know the keyword (keywords not listed are as old as sysfs)."""


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
            elif io.is_dir(d / part):
                nxt.append(d / part)
        dirs = nxt
    return dirs


def detect_features(io: SysfsIO, kdamonds_dir: Path) -> Features:
    """Inspect every existing kdamond directory under ``kdamonds_dir`` (reads only)."""
    kdirs = []
    if io.is_dir(kdamonds_dir):
        kdirs = [kdamonds_dir / str(n) for n in io.numeric_subdirs(kdamonds_dir)]
    kinds: dict[str, frozenset[str]] = {}
    for kind, (_, patterns) in _KINDS.items():
        entries: set[str] = set()
        found = False
        for kdir, pattern in ((k, p) for k in kdirs for p in patterns):
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
        seen.append(BASE)
    newest = max(seen, key=version) if seen else None
    keywords = tuple(kw for kw, rel in KEYWORDS if newest is not None and version(rel) <= version(newest))
    return Features(kinds, avail, newest, keywords)
