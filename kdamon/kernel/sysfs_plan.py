"""From a ``Kdamond`` to the list of sysfs writes that stage it, by walking the schema.

A plan is the ``nr_*`` counts (top-down, so each count's directory exists by
the time it is written) and every leaf value, each with the kernel's default
for that file and the release that introduced it: a leaf whose file is
missing is fine when its value is the default (the kernel behaves the same
without the feature) and a ``FeatureMissingError`` otherwise.

Paths are relative to the kdamond directory ``kdamonds/<K>``.
"""

from __future__ import annotations

from typing import Any

import attrs

from kdamon.kernel.sysfs_nodes import BASE, Dir, File, Kind, Value, get_field, later
from kdamon.kernel.sysfs_read import read_object
from kdamon.kernel.sysfs_schema import KDAMOND
from kdamon.model import Kdamond, join_path

__all__ = ["Count", "Leaf", "Plan", "canonical", "plan_kdamond"]


@attrs.frozen
class Count:
    """An ``nr_*`` file and the number of children it must have."""

    path: str
    value: int
    field: str
    since: str


@attrs.frozen
class Leaf:
    """One value file: what to write, the kernel default, and its first release."""

    path: str
    value: Value
    default: Value
    field: str
    since: str


@attrs.frozen
class Plan:
    counts: tuple[Count, ...]
    leaves: tuple[Leaf, ...]


class _Builder:
    def __init__(self, layered: bool) -> None:
        self.layered = layered
        self.counts: list[Count] = []
        self.leaves: list[Leaf] = []

    def object(self, d: Dir, obj: Any, rel: str, prefix: str, since: str) -> None:
        """The writes for ``obj`` in directory ``rel`` of type ``d``."""
        for node in d.children:
            path, node_since = f"{rel}{node.name}", later(since, node.since)
            if isinstance(node, File):
                if node.field is None or not node.writable:
                    continue
                if node.only is not None and not node.only.holds(lambda name: get_field(obj, name)):
                    continue
                value = node.encode(get_field(obj, node.field))
                self.leaves.append(Leaf(path, value, node.default, join_path(prefix, node.field), node_since))
            elif node.items is None:
                self.object(node, obj, f"{path}/", prefix, node_since)
            elif node.field is not None and node.count is not None:
                field = join_path(prefix, node.field)
                members = [
                    (i, item)
                    for i, item in enumerate(get_field(obj, node.field))
                    if node.select is None or node.select(item, self.layered)
                ]
                self.counts.append(Count(f"{path}/{node.count.name}", len(members), field, node_since))
                for k, (i, item) in enumerate(members):
                    self.object(node.items, item, f"{path}/{k}/", f"{field}[{i}]", node_since)


def plan_kdamond(kdamond: Kdamond, *, layered: bool) -> Plan:
    """The writes that stage ``kdamond``; ``layered``: the kernel has ``core_filters/``."""
    b = _Builder(layered)
    b.object(KDAMOND, kdamond, "", "", BASE)
    # Counts are applied top-down before any leaf: they are in creation order.
    return Plan(tuple(b.counts), tuple(b.leaves))


class _Planned:
    """The files of a directory as a plan leaves them (a ``sysfs_read.Source``)."""

    def __init__(self, plan: Plan) -> None:
        self.values: dict[str, Value] = {c.path: c.value for c in plan.counts}
        self.values.update((leaf.path, leaf.value) for leaf in plan.leaves)
        self.dirs = {path.rsplit("/", n)[0] for path in self.values for n in range(1, path.count("/") + 1)}

    def exists(self, rel: str) -> bool:
        return rel in self.values or rel in self.dirs

    def value(self, rel: str, kind: Kind) -> Value:
        return self.values[rel]


def canonical(kdamond: Kdamond, *, layered: bool) -> Kdamond:
    """The form ``read()`` returns for ``kdamond`` once staged: its plan, read back.

    Filters come back grouped by directory (core layer first where the kernel
    has layer directories), with layer ``auto`` and only their type's own
    fields; an explicit ``consist`` goal tuner reads back as None (the
    default); a goal's ``path`` only for the memcg metrics that use it.
    """
    back: Kdamond = read_object(_Planned(plan_kdamond(kdamond, layered=layered)), KDAMOND)
    return back
