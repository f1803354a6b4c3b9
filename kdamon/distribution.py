"""kdamon as a distribution: its version, its requirements and its extras.

The version comes from the installed package's metadata (a source checkout
that is not installed reads its ``pyproject.toml``).  Requirements come from
the source checkout's ``pyproject.toml`` when kdamon runs from one (that is
the code running, even when an older install's metadata is around), else
from the metadata.  ``packaging`` is imported only when requirements are
parsed.
"""

from __future__ import annotations

import importlib.metadata as md
import tomllib
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kdamon.errors import MissingExtraError

if TYPE_CHECKING:
    from packaging.requirements import Requirement

__all__ = ["NAME", "declared_names", "missing", "require_extra", "requirements", "source_checkout", "version"]

NAME = "kdamon"
UNKNOWN_VERSION = "0+unknown"


def source_checkout() -> Path | None:
    """kdamon's source checkout when it runs from one (then shared into guests)."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").is_file() and (root / NAME).is_dir() else None


def version() -> str:
    """kdamon's version: the installed metadata's, else the source checkout's pyproject.toml."""
    try:
        return md.version(NAME)
    except md.PackageNotFoundError:
        project = _pyproject()
        return str(project.get("version", UNKNOWN_VERSION)) if project else UNKNOWN_VERSION


def requirements(extra: str | None = None) -> list[Requirement]:
    """The requirements of kdamon itself (``extra`` None) or of one extra, for this machine.

    An extra naming other extras (``kdamon[check,events]``) brings theirs;
    requirements whose environment markers do not hold here are left out.
    """
    base, extras = _declared()
    if extra is not None and extra not in extras:
        raise ValueError(f"kdamon has no extra {extra!r} (it has: {', '.join(sorted(extras))})")
    return _expand(base if extra is None else extras[extra], extra or "", extras, {extra or ""})


def declared_names() -> list[str]:
    """Names of every distribution kdamon or one of its extras requires (kdamon's own not among them)."""
    base, extras = _declared()
    reqs = _expand(base, "", extras, {""})
    for name, texts in extras.items():
        reqs += _expand(texts, name, extras, {name})
    return list(dict.fromkeys(r.name for r in reqs))


def missing(extra: str) -> list[str]:
    """The requirements of ``extra`` that are not installed here, each with what was found."""
    absent = []
    for req in requirements(extra):
        wanted = f"{req.name}{req.specifier}"  # without the metadata's marker (extra == ...)
        try:
            found = md.version(req.name)
        except md.PackageNotFoundError:
            absent.append(f"{wanted} (not installed)")
            continue
        if not req.specifier.contains(found, prereleases=True):
            absent.append(f"{wanted} (found {found})")
    return absent


def require_extra(extra: str, feature: str) -> None:
    """Raise MissingExtraError naming the extra when ``feature``'s requirements are not all installed."""
    absent = missing(extra)
    if absent:
        raise MissingExtraError(
            f"{feature} needs {', '.join(absent)}: install kdamon's {extra!r} extra, pip install 'kdamon[{extra}]'"
        )


@cache
def _pyproject() -> dict[str, Any] | None:
    root = source_checkout()
    if root is None:
        return None
    project: dict[str, Any] = tomllib.loads((root / "pyproject.toml").read_text()).get("project", {})
    return project


@cache
def _declared() -> tuple[list[str], dict[str, list[str]]]:
    """kdamon's requirements as written, and each extra's (metadata markers ``extra == X`` sorted out)."""
    project = _pyproject()
    if project is not None:
        return list(project.get("dependencies", [])), dict(project.get("optional-dependencies", {}))
    try:
        dist = md.distribution(NAME)
    except md.PackageNotFoundError:
        return [], {}
    from packaging.requirements import Requirement

    base: list[str] = []
    extras: dict[str, list[str]] = {name: [] for name in dist.metadata.get_all("Provides-Extra") or ()}
    for text in dist.requires or ():
        marker = Requirement(text).marker
        if marker is None or marker.evaluate({"extra": ""}):
            base.append(text)
            continue
        for name, texts in extras.items():
            if marker.evaluate({"extra": name}):
                texts.append(text)
    return base, extras


def _expand(texts: list[str], extra: str, extras: dict[str, list[str]], seen: set[str]) -> list[Requirement]:
    """``texts`` parsed, markers evaluated for ``extra``, references to kdamon's own extras expanded."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    found: list[Requirement] = []
    for text in texts:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"extra": extra}):
            continue
        if canonicalize_name(req.name) != NAME:
            found.append(req)
            continue
        for other in sorted(req.extras - seen):
            seen.add(other)
            found += _expand(extras.get(other, []), other, extras, seen)
    return found
