"""Print the lowest versions that pyproject.toml allows, as pip constraints.

    python3 scripts/lowest_requirements.py [EXTRA ...]

Every requirement of kdamon and of the named extras (with the extras they
name in turn, ``kdamon[check]``) that applies on this machine becomes
``name==FLOOR`` where its specifier has a ``>=`` floor, and stays as written
where it has none.  CI installs kdamon with these constraints into a venv of
its own and runs the host tests there, so that a floor too low for the code
fails CI.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def lowest(req: Requirement) -> str:
    """``name==FLOOR`` when ``req`` has a ``>=`` floor; else ``req`` without its marker."""
    from packaging.version import Version

    floors = [s.version for s in req.specifier if s.operator == ">="]
    if floors:
        return f"{req.name}=={max(floors, key=Version)}"
    return f"{req.name}{req.specifier}"


def main(extras: list[str]) -> int:
    sys.path.insert(0, str(ROOT))  # this checkout's kdamon
    from kdamon.distribution import requirements

    reqs = requirements() + [req for extra in extras for req in requirements(extra)]
    print("\n".join(dict.fromkeys(lowest(req) for req in reqs)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
