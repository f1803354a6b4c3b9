"""Read a kdamond directory back into the model, and its results, by walking the schema.

Everything here only reads files; nothing writes.  A file newer than its
directory (``quotas/goal_tuner`` in a scheme) may be missing: it then holds
its default, as on the kernel that lacks it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from kdamon.errors import ConfigError, KernelError
from kdamon.kernel.sysfs_io import SysfsIO
from kdamon.kernel.sysfs_nodes import BASE, Dir, File, Kind, Value, build, later, version, walk
from kdamon.kernel.sysfs_schema import KDAMOND, SCHEME, STATS, TRIED_REGION, TRIED_REGIONS
from kdamon.model import Kdamond, SchemeStats, TriedRegion

__all__ = ["Source", "fingerprint", "read_kdamond", "read_object", "read_scheme_stats", "read_tried_regions"]


class Source(Protocol):
    """Where the reader takes file values from, by path relative to a kdamond directory."""

    def exists(self, rel: str) -> bool: ...
    def value(self, rel: str, kind: Kind) -> Value: ...


class IoSource:
    """The files below ``base`` on the (real or emulated) kernel."""

    def __init__(self, io: SysfsIO, base: Path) -> None:
        self.io, self.base = io, base

    def exists(self, rel: str) -> bool:
        return self.io.exists(self.base / rel)

    def value(self, rel: str, kind: Kind) -> Value:
        path = self.base / rel
        if kind in ("int", "count"):
            return self.io.read_int(path)
        if kind == "bool":
            return self.io.read_bool(path)
        return self.io.read_str(path)


def _present(src: Source, rel: str, node: File, since: str) -> bool:
    """Whether to read ``node``: files as old as their directory are always there."""
    return version(node.since) <= version(since) or src.exists(rel)


def _read_dir(
    src: Source | None, d: Dir, rel: str, since: str, fields: dict[str, Any], scope: Mapping[str, Any]
) -> None:
    """Read the fields of ``d`` into ``fields``; ``src`` None: the directory is missing (defaults)."""
    for node in d.children:
        path, node_since = f"{rel}{node.name}", later(since, node.since)
        if isinstance(node, File):
            if node.field is None or (node.only is not None and not node.only.holds(fields.get)):
                continue
            there = src is not None and _present(src, path, node, since)
            raw = src.value(path, node.kind) if src is not None and there else node.default
            fields[node.field] = node.decode(raw, scope)
        elif node.items is None:
            newer = src is not None and version(node.since) > version(since) and not src.exists(path)
            _read_dir(None if newer else src, node, f"{path}/", node_since, fields, scope)
        elif node.field is not None and node.count is not None:
            count = f"{path}/{node.count.name}"
            number = int(src.value(count, "count")) if src is not None and src.exists(count) else 0
            inner = {**scope, **fields}
            items = [read_object(src, node.items, f"{path}/{i}/", node_since, inner) for i in range(number)]
            fields.setdefault(node.field, []).extend(items)


def read_object(
    src: Source | None, d: Dir, rel: str = "", since: str = BASE, scope: Mapping[str, Any] | None = None
) -> Any:
    """The model object (``d.model``) that numbered directory ``rel`` holds."""
    fields: dict[str, Any] = {}
    _read_dir(src, d, rel, since, fields, scope or {})
    assert d.model is not None
    return build(d.model, fields)


def read_kdamond(io: SysfsIO, kdir: Path) -> Kdamond:
    """The configuration staged in ``kdir`` (``kdamonds/<K>``), as the model."""
    try:
        kdamond: Kdamond = read_object(IoSource(io, kdir), KDAMOND)
    except ConfigError as exc:
        raise KernelError(
            f"the configuration staged in {kdir} is not one kdamon can represent ({exc}); "
            "it was probably written by another tool: read its files directly",
            path=str(kdir),
        ) from exc
    return kdamond


def _results(src: Source, d: Dir, rel: str, since: str, cls: type) -> Any:
    """``cls`` from the result files directly in ``d``; a missing newer file gives None."""
    fields = {
        node.result: src.value(f"{rel}{node.name}", node.kind)
        if _present(src, f"{rel}{node.name}", node, since)
        else None
        for node in d.children
        if isinstance(node, File) and node.result is not None
    }
    return cls(**fields)


def read_scheme_stats(io: SysfsIO, scheme_dir: Path) -> SchemeStats:
    """The ``stats/`` files as last copied by the kernel (``update_schemes_stats``)."""
    stats: SchemeStats = _results(IoSource(io, scheme_dir), STATS, f"{STATS.name}/", SCHEME.since, SchemeStats)
    return stats


def read_tried_regions(io: SysfsIO, scheme_dir: Path) -> tuple[int, list[TriedRegion]]:
    """``(total_bytes, regions)`` of the last tried-regions update, in address order.

    Region directories are numbered by a counter shared by all schemes up to
    6.13, so they are enumerated and sorted numerically, not assumed 0..N-1.
    """
    tried = TRIED_REGIONS
    src, rel = IoSource(io, scheme_dir), f"{tried.name}/"
    regions = [
        _results(src, TRIED_REGION, f"{rel}{n}/", tried.since, TriedRegion)
        for n in io.numeric_subdirs(scheme_dir / tried.name)
    ]
    total = _results(src, tried, rel, tried.since, dict)["total_bytes"]
    return (sum(r.end - r.start for r in regions) if total is None else int(total)), regions


# Files the kernel rewrites by itself (results, tuned intervals, run state):
# not part of the configuration, so not part of its fingerprint.
VOLATILE = frozenset(p.node.name for p in walk(KDAMOND) if p.node.volatile)


def fingerprint(io: SysfsIO, kdir: Path) -> str:
    """A digest of every configuration file under ``kdir`` (read only)."""
    lines: list[str] = []

    def visit(d: Path, rel: str) -> None:
        for name in sorted(io.listdir(d)):
            if name in VOLATILE:
                continue
            path = d / name
            if io.is_dir(path):
                visit(path, f"{rel}{name}/")
            else:
                lines.append(f"{rel}{name}={io.read_str(path)}")

    visit(kdir, "")
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()
