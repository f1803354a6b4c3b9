"""``--kernel NAME|PATH`` to a bootable kernel: a Debian recipe fetched, a build recipe built, or the
user's own bzImage (with the modules of a ``make modules_install`` tree)."""

from __future__ import annotations

from pathlib import Path

import attrs

from kdamon.errors import GuestError
from kdamon.userfiles import require_file
from kdamon.vm.build import build_kernel
from kdamon.vm.kernels import DebianKernels, Kernel, Progress, bzimage_version, cache_dir, load_recipe

__all__ = ["resolve_kernel"]


def resolve_kernel(spec: str, *, modules: Path | None = None, progress: Progress | None = None) -> Kernel:
    """Turn ``--kernel NAME|PATH`` into a bootable :class:`Kernel`, fetching or building it if needed."""
    say = progress or (lambda _msg: None)
    if "/" in spec or Path(spec).is_file():
        return _user_kernel(Path(spec), modules)
    recipe = load_recipe(spec)
    if recipe.kind == "debian":
        kernel = DebianKernels(cache_dir(), say).fetch(recipe)
    elif recipe.kind == "build":
        kernel = build_kernel(recipe, cache_dir(), say)
    else:
        raise GuestError(f"vm-images/{spec}.toml: unknown kind '{recipe.kind}'")
    if modules is not None:
        kernel = attrs.evolve(kernel, modules_dir=_modules_tree(modules, kernel.version))
    return kernel


def _user_kernel(path: Path, modules: Path | None) -> Kernel:
    try:
        require_file(path)
    except OSError as exc:
        raise GuestError(
            f"{path}: {exc.strerror}; give a kernel image (make bzImage) or a recipe name "
            "(kdamon vm kernels lists them)"
        ) from None
    version = bzimage_version(path)
    modules_dir = _modules_tree(modules, version) if modules is not None else None
    return Kernel(name=str(path), vmlinuz=path.resolve(), version=version, modules_dir=modules_dir)


def _modules_tree(modules: Path, version: str) -> Path:
    """The ``lib/modules/<version>`` directory inside a ``make modules_install INSTALL_MOD_PATH=DIR`` tree."""
    base = modules / "lib" / "modules"
    if not base.is_dir():
        base = modules / "usr" / "lib" / "modules"
    if version and (base / version).is_dir():
        return base / version
    trees = sorted(p for p in base.glob("*") if p.is_dir()) if base.is_dir() else []
    if len(trees) == 1:
        return trees[0]
    raise GuestError(
        f"--modules {modules}: expected lib/modules/{version or '<version>'} inside it "
        "(make modules_install INSTALL_MOD_PATH=DIR)"
    )
