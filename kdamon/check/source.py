"""``kdamon check --source LINUX_TREE``: configure and build a developer's kernel tree for the check.

The configuration is ``make tinyconfig`` plus the DAMON fragment that
``vm-images`` keeps for the ``linux-6.1-dbgfs`` kernel and the debugging
options of ``vm-images/check-debug.config`` (lock and list misuse becomes
a WARNING that fails ``kernel.no_warn_bug``), adjusted to the tree's
Kconfig: options the tree does not declare are left out, and options it
spells differently (``RENAMED``: the debugfs interface through
``DAMON_DBGFS_DEPRECATED`` in 6.9-6.13, ``MITIGATION_PAGE_TABLE_ISOLATION``
from 6.9) are asked for by their new names.  The build is out of tree
(``O=``), with ccache when installed, so the developer's tree is not
touched.  The make driver, the fragment parsing and the landed-options
check are ``kdamon.vm.build``'s.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path

from kdamon.errors import GuestError
from kdamon.userfiles import require_dir

__all__ = [
    "DEBUG_FRAGMENT",
    "FRAGMENT_RECIPE",
    "RENAMED",
    "TreeBuild",
    "adjust_fragment",
    "build_tree",
    "check_tree",
    "declared_symbols",
]

Progress = Callable[[str], None]
FRAGMENT_RECIPE = "linux-6.1-dbgfs"
DEBUG_FRAGMENT = "check-debug.config"
_SKIP_DIRS = frozenset({".git", "Documentation", "tools", "scripts"})
_CONFIG = re.compile(r"^\s*(?:menu)?config\s+([A-Za-z0-9_]+)\s*$", re.MULTILINE)
# Options that newer trees spell differently: used instead where the tree declares them.
RENAMED = {
    "CONFIG_DAMON_DBGFS": "CONFIG_DAMON_DBGFS_DEPRECATED",  # 6.9-6.13: the old symbol is hidden behind this one
    "CONFIG_PAGE_TABLE_ISOLATION": "CONFIG_MITIGATION_PAGE_TABLE_ISOLATION",  # 6.9+
}


def declared_symbols(tree: Path) -> frozenset[str]:
    """Every ``config``/``menuconfig`` symbol declared in the tree's Kconfig files (as ``CONFIG_X``)."""
    found: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(tree):
        dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS]
        for name in filenames:
            if name.startswith("Kconfig"):
                text = Path(dirpath, name).read_text(errors="replace")
                found.update(f"CONFIG_{m}" for m in _CONFIG.findall(text))
    return frozenset(found)


def adjust_fragment(wanted: Mapping[str, str], declared: frozenset[str]) -> tuple[dict[str, str], list[str]]:
    """The fragment's options this tree can take, and notes about what was changed."""
    out: dict[str, str] = {}
    notes: list[str] = []
    for name, value in wanted.items():
        other = RENAMED.get(name)
        if other is not None and other in declared:
            out[other] = value
            notes.append(f"{name.removeprefix('CONFIG_')} as {other.removeprefix('CONFIG_')}")
        elif name in declared:
            out[name] = value
        else:
            notes.append(f"{name.removeprefix('CONFIG_')} left out (the tree does not declare it)")
    return out, notes


def _tree_version(tree: Path) -> str:
    text = (tree / "Makefile").read_text(errors="replace")
    fields = dict(re.findall(r"^(VERSION|PATCHLEVEL|SUBLEVEL)\s*=\s*(\d*)", text, re.MULTILINE))
    return ".".join(fields.get(k, "?") for k in ("VERSION", "PATCHLEVEL", "SUBLEVEL"))


def check_tree(tree: Path) -> Path:
    """``tree`` resolved, once it is known to be a Linux tree with DAMON."""
    require_dir(tree)
    tree = tree.resolve()
    if not (tree / "Makefile").is_file() or not (tree / "mm").is_dir():
        raise GuestError(f"--source {tree}: not a Linux source tree (no Makefile and mm/ at its top)")
    if not (tree / "mm" / "damon").is_dir():
        raise GuestError(f"--source {tree}: this tree has no mm/damon (DAMON arrived in Linux 5.15)")
    return tree


def build_tree(tree: Path, *, build_dir: Path | None = None, progress: Progress | None = None) -> Path:
    """Configure and build ``tree`` out of tree; the bzImage to boot."""
    from kdamon.vm.kernels import cache_dir

    tree = check_tree(tree)
    digest = hashlib.sha256(str(tree).encode()).hexdigest()[:12]
    build = TreeBuild(tree, build_dir or cache_dir() / "source-builds" / digest, progress)
    build.configure()
    return build.bzimage()


class TreeBuild:
    """An out-of-tree build of ``tree`` in ``out``: configured once, then ``make bzImage`` as often as needed.

    Every make's output goes to ``out/kdamon-build.log`` (``configure``
    starts it afresh, ``bzimage`` appends unless told otherwise).
    """

    def __init__(self, tree: Path, out: Path, progress: Progress | None = None) -> None:
        from kdamon.vm.build import Make
        from kdamon.vm.kernels import cache_dir

        self.tree = tree
        self.out = out.resolve()
        self.out.mkdir(parents=True, exist_ok=True)
        self.say = progress or (lambda _m: None)
        self._make = Make(tree, self.out / "kdamon-build.log", self.say, out=self.out, cache=cache_dir())

    @property
    def version(self) -> str:
        return _tree_version(self.tree)

    @property
    def image(self) -> Path:
        return self._make.image

    def configure(self) -> None:
        """``make tinyconfig`` plus the DAMON and debugging fragments, adjusted to the tree; every option checked."""
        from kdamon.vm.build import parse_fragment
        from kdamon.vm.kernels import load_recipe, recipes_dir

        names = (load_recipe(FRAGMENT_RECIPE).get_str("config_fragment"), DEBUG_FRAGMENT)
        fragment = {k: v for name in names for k, v in parse_fragment((recipes_dir() / name).read_text()).items()}
        wanted, notes = adjust_fragment(fragment, declared_symbols(self.tree))
        fragments = " + ".join(names)
        self.say(
            f"kdamon: configuring Linux {self.version} in {self.out}: tinyconfig + {fragments}"
            + (f" ({'; '.join(notes)})" if notes else "")
        )
        self._make.new_log()
        missing = self._make.configure("tinyconfig", wanted, f"vm-images/{fragments}, adjusted to the tree")
        if missing:
            raise GuestError(
                f"--source {self.tree}: these options of {fragments} did not land in .config: "
                f"{', '.join(missing)}; the tree's Kconfig needs other options for them"
            )

    def bzimage(self, *, what: str = "", fresh_log: bool = False) -> Path:
        """``make bzImage``; the image.  Raises :class:`GuestError` with the log's last lines when make fails."""
        if fresh_log:
            self._make.new_log()
        image = self._make.bzimage(what or f"compiling Linux {self.version}")
        self.say(f"kdamon: built {image}")
        return image
