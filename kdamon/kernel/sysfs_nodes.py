"""The building blocks of the declarative DAMON sysfs schema (``sysfs_schema.py``).

As the kernel has one kobject type per directory, the schema has one
:class:`Dir` per kind of directory: its files, its sub-directories and, for
the directories an ``nr_*`` file fills (``targets/``, ``schemes/``...), the
type of their numbered children.  Each :class:`File` says which model field
it holds, its default, the release it appeared in and the hints for the
errors the kernel returns when it is written.  Everything that needs to know
the tree (the writer's plan, the reader, feature detection, the error hints,
``kdamon check``'s expected tree) walks it through the helpers here.
"""

from __future__ import annotations

import errno
import functools
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal

import attrs

__all__ = [
    "BASE",
    "Codec",
    "Dir",
    "File",
    "Keyword",
    "Kind",
    "Node",
    "Only",
    "Placed",
    "Value",
    "build",
    "get_field",
    "later",
    "present",
    "version",
    "walk",
]

BASE = "5.18"
"""The first release with DAMON sysfs: the ``since`` of everything not marked otherwise."""

Value = int | str | bool
Kind = Literal["int", "bool", "keyword", "text", "list", "count", "state"]
# "text": any string (a cgroup path); "list": one keyword per line (read only);
# "count": an nr_* file; "state": the state file, which takes the keywords below.

_EINVAL = {
    "count": "{name} needs a non-negative integer",
    "keyword": "'{written}' is not a keyword this kernel accepts for {name}",
}


def version(text: str) -> tuple[int, ...]:
    """``"6.15"`` -> ``(6, 15)``, for comparing releases."""
    return tuple(int(part) for part in text.split("."))


def later(a: str, b: str) -> str:
    """The later of two releases."""
    return max(a, b, key=version)


@attrs.frozen
class Only:
    """The file belongs to an object only where its ``field`` holds one of ``values``
    (the kernel has the file everywhere; kdamon writes and reads it only there)."""

    field: str
    values: tuple[str, ...]

    def holds(self, get: Callable[[str], Any]) -> bool:
        """Whether the object whose fields ``get`` returns has the file."""
        return get(self.field) in self.values


@attrs.frozen
class Codec:
    """A model value that differs from the file's: ``write`` gives the file value,
    ``read`` the model value back (``scope``: the fields of the enclosing objects)."""

    write: Callable[[Any], Value]
    read: Callable[[Value, Mapping[str, Any]], Any]


@attrs.frozen
class Keyword:
    """A ``state`` keyword, its first release, and the ``kind/entry`` files that came with it:
    where one of those is seen missing, the kernel does not know the keyword."""

    name: str
    since: str = BASE
    came_with: tuple[str, ...] = ()
    hints: tuple[tuple[int, str], ...] = ()


@attrs.frozen
class File:
    """One sysfs file.

    ``field`` is the configuration it holds, a dotted path relative to the model object of the
    nearest numbered directory (``quota.weights.sz_permil`` in ``schemes/<S>/quotas/weights/``);
    ``result`` the field of a result type it holds (``SchemeStats.nr_tried``).  ``volatile``:
    the kernel rewrites it (results, tuned intervals): not part of a configuration's fingerprint.
    ``hints``: what to say when a write fails with an errno (``{name}``/``{written}`` filled in).
    """

    name: str
    since: str = BASE
    field: str | None = None
    default: Value = 0
    kind: Kind = "int"
    writable: bool = True
    volatile: bool = False
    result: str | None = None
    only: Only | None = None
    codec: Codec | None = None
    hints: tuple[tuple[int, str], ...] = ()
    keywords: tuple[Keyword, ...] = ()
    until: str | None = None  # the first release without it

    def hint(self, err: int, written: str) -> str | None:
        """The hint for a failed write of ``written``, None for the generic ones."""
        keyword = next((k for k in self.keywords if k.name == written), None)
        text = dict(keyword.hints).get(err) if keyword is not None else None
        text = text if text is not None else dict(self.hints).get(err)
        if text is None and err == errno.EINVAL:
            text = _EINVAL.get(self.kind, "'{written}' is out of range for {name}")
        return None if text is None else text.format(name=self.name, written=written)

    def encode(self, value: Any) -> Value:
        """The file value for model value ``value``."""
        if self.codec is not None:
            return self.codec.write(value)
        return self.default if value is None else typing.cast(Value, value)

    def decode(self, value: Value, scope: Mapping[str, Any]) -> Any:
        return value if self.codec is None else self.codec.read(value, scope)


@attrs.frozen
class Dir:
    """A directory: its files and sub-directories in the order kdamon writes them.

    A directory an ``nr_*`` file fills has ``count`` (that file), ``items`` (the type of its
    numbered children, whose ``model`` is the object each holds) and ``field`` (the model
    tuple they come from, relative to the enclosing object); ``select`` picks which of the
    tuple's items live here (filters go to ``core_filters/`` or ``ops_filters/`` by type).
    A directory with ``items`` and no ``count`` is filled by the kernel (tried regions).
    ``kind`` names the directory in feature evidence (``Features.has("scheme", "dests")``).
    """

    name: str
    children: tuple[Node, ...] = ()
    since: str = BASE
    kind: str | None = None
    model: type | None = None
    count: File | None = None
    items: Dir | None = None
    field: str | None = None
    select: Callable[[Any, bool], bool] | None = None
    volatile: bool = False
    until: str | None = None

    def child(self, name: str) -> Node:
        for node in self.children:
            if node.name == name:
                return node
        raise KeyError(f"{self.name}/ has no {name}")

    @property
    def kernel_filled(self) -> bool:
        return self.items is not None and self.count is None

    def entries(self) -> Iterator[Node]:
        """The files and directories directly in this directory (the count file first)."""
        if self.count is not None:
            yield self.count
        yield from self.children


Node = File | Dir


def get_field(obj: Any, dotted: str) -> Any:
    """``get_field(scheme, "quota.weights.sz_permil")``."""
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


@functools.cache
def _nested_types(cls: type) -> dict[str, type]:
    """The fields of attrs class ``cls`` that hold another attrs class, by name."""
    hints = typing.get_type_hints(cls)
    return {name: kind for name, kind in hints.items() if attrs.has(kind)}


def build(cls: type, fields: Mapping[str, Any]) -> Any:
    """An instance of ``cls`` from dotted ``fields`` (``{"quota.ms": 5}``); the rest default."""
    own: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for key, value in fields.items():
        head, dot, rest = key.partition(".")
        if dot:
            nested.setdefault(head, {})[rest] = value
        else:
            own[key] = value
    kinds = _nested_types(cls)
    for head, sub in nested.items():
        own[head] = build(kinds[head], sub)
    return cls(**own)


@attrs.frozen
class Placed:
    """A node where it sits in a tree: its path (``N`` for numbered directories, directories
    ending with ``/``), the first release that has it there, and its directory."""

    path: str
    node: Node
    since: str
    parent: Dir
    until: str | None = None


def walk(d: Dir, base: str = "", since: str = BASE, until: str | None = None) -> Iterator[Placed]:
    """Every entry below ``d`` as ``nr_* = 1`` everywhere leaves it: one of each numbered
    directory, none of those the kernel makes by itself (tried regions)."""
    for node in d.entries():
        node_since = later(since, node.since)
        node_until = node.until or until
        if isinstance(node, File):
            yield Placed(f"{base}{node.name}", node, node_since, d, node_until)
            continue
        yield Placed(f"{base}{node.name}/", node, node_since, d, node_until)
        yield from walk(node, f"{base}{node.name}/", node_since, node_until)
    if d.items is not None and not d.kernel_filled:
        yield Placed(f"{base}N/", d.items, since, d, until)
        yield from walk(d.items, f"{base}N/", since, until)


def present(placed: Placed, release: str) -> bool:
    """Whether a kernel of ``release`` has the entry."""
    return version(placed.since) <= version(release) and (
        placed.until is None or version(release) < version(placed.until)
    )
