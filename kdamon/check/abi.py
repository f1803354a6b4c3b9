"""The DAMON sysfs ABI a kernel should offer for its release, derived from kdamon's schema.

The tables come from ``kdamon.kernel.sysfs_schema`` (the one declaration of the tree, with the
version tags of ``damon-abi.md`` §1.1-1.3): every entry is a path below one kdamond directory
(``kdamonds/<K>/``), with ``N`` standing for any numbered child directory, and the first release
that has it (and, for entries that were removed, the first release without it).  Directories
end with ``/``.  A kernel's expected set is derived from its release string (``uname -r``),
then compared with what the tree shows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import attrs

from kdamon.kernel import sysfs_schema as schema
from kdamon.kernel.sysfs_io import encode
from kdamon.kernel.sysfs_nodes import File, Placed, walk

__all__ = [
    "KEYWORDS",
    "TREE",
    "TRIED_REGION",
    "AbiDiff",
    "Entry",
    "diff_entries",
    "expected_defaults",
    "expected_keywords",
    "expected_read_only",
    "expected_tree",
    "expected_tried_region",
    "parse_release",
]

Version = tuple[int, int]

_RELEASE = re.compile(r"^(\d+)\.(\d+)")


def parse_release(release: str) -> Version:
    """``(major, minor)`` of a ``uname -r`` string such as ``6.12.117+deb13-cloud-amd64``."""
    m = _RELEASE.match(release.strip())
    if m is None:
        raise ValueError(f"cannot read a kernel version from the release string {release!r}")
    return int(m.group(1)), int(m.group(2))


@attrs.frozen
class Entry:
    path: str
    since: Version
    until: Version | None = None  # first release without it
    file: File | None = attrs.field(default=None, eq=False, repr=False)  # the schema's file, if one

    def present_in(self, version: Version) -> bool:
        return self.since <= version and (self.until is None or version < self.until)


def _entry(placed: Placed) -> Entry:
    until = parse_release(placed.until) if placed.until is not None else None
    file = placed.node if isinstance(placed.node, File) else None
    return Entry(placed.path, parse_release(placed.since), until, file)


TREE: tuple[Entry, ...] = tuple(_entry(p) for p in walk(schema.KDAMOND))
"""A kdamond directory with one of every numbered child (as ``nr_* = 1`` creates)."""

TRIED_REGION: tuple[Entry, ...] = tuple(_entry(p) for p in walk(schema.TRIED_REGION, since=schema.TRIED_REGIONS.since))
"""One ``tried_regions/<R>/`` directory (``probes/`` is there even without probes)."""

KEYWORDS: tuple[Entry, ...] = tuple(Entry(k.name, parse_release(k.since)) for k in schema.STATE.keywords)
"""``kdamonds/<K>/state`` keywords (§3)."""


def _expected(table: Iterable[Entry], version: Version) -> frozenset[str]:
    return frozenset(e.path for e in table if e.present_in(version))


def expected_tree(version: Version) -> frozenset[str]:
    return _expected(TREE, version)


def expected_tried_region(version: Version) -> frozenset[str]:
    return _expected(TRIED_REGION, version)


def expected_keywords(version: Version) -> tuple[str, ...]:
    return tuple(e.path for e in KEYWORDS if e.present_in(version))


def expected_defaults(version: Version) -> dict[str, str]:
    """What each value file reads right after its directory was created (counts and lists aside)."""
    return {
        e.path: encode(e.file.default).decode()
        for e in TREE
        if e.file is not None and e.file.kind not in ("count", "list") and e.present_in(version)
    }


def expected_read_only(version: Version) -> frozenset[str]:
    """The files of the tree that only the kernel writes (mode 0400)."""
    return frozenset(e.path for e in TREE if e.file is not None and not e.file.writable and e.present_in(version))


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
