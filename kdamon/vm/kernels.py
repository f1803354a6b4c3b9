"""Guest kernels: recipes from ``vm-images/``, fetched with a private apt configuration.

A kernel is named by a recipe (``debian-6.12``) or given as a path to a bzImage.
Debian kernels are downloaded with ``apt-get download`` through an apt
configuration of kdamon's own (its own sources list, lists and cache under the
kdamon cache directory), so the machine's apt sources are never changed.  The
unpacked kernel is cached by package name and version.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

import attrs

from kdamon.errors import GuestError
from kdamon.userfiles import reading

Progress = Callable[[str], None]

DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
APT_LISTS_MAX_AGE_S = 24 * 3600


@attrs.frozen
class Kernel:
    """A bootable kernel and what the guest needs to know about it."""

    name: str
    vmlinuz: Path
    version: str
    config: Path | None = None
    modules_dir: Path | None = None
    cmdline: tuple[str, ...] = ()


@attrs.frozen
class Recipe:
    name: str
    description: str
    kind: str
    data: dict[str, object]

    def get_str(self, key: str) -> str:
        value = self.data.get(key)
        if not isinstance(value, str):
            raise GuestError(f"vm-images/{self.name}.toml: '{key}' must be a string")
        return value

    def get_list(self, key: str) -> list[str]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise GuestError(f"vm-images/{self.name}.toml: '{key}' must be a list of strings")
        return list(value)


def cache_dir() -> Path:
    """Where downloads, kernels and images are cached (outside any checkout)."""
    env = os.environ.get("KDAMON_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "kdamon"


def recipes_dir() -> Path:
    """``vm-images/`` of a source checkout, or the copy shipped inside the wheel."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package.parent / "vm-images", package / "_vm_images"):
        if candidate.is_dir():
            return candidate
    raise GuestError("cannot find kdamon's vm-images recipes; reinstall kdamon")


def list_recipes() -> list[Recipe]:
    return [load_recipe(p.stem) for p in sorted(recipes_dir().glob("*.toml"))]


def load_recipe(name: str) -> Recipe:
    path = recipes_dir() / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(p.stem for p in sorted(recipes_dir().glob("*.toml")))
        raise GuestError(f"unknown kernel '{name}': give a recipe name ({known}) or a path to a bzImage")
    data = tomllib.loads(path.read_text())
    return Recipe(name=name, description=str(data.get("description", "")), kind=str(data.get("kind", "")), data=data)


def bzimage_version(path: Path) -> str:
    """The kernel release string stored in a bzImage header ("" if it has none)."""
    with reading(path), path.open("rb") as f:
        header = f.read(0x300)
        if len(header) < 0x210 or header[0x202:0x206] != b"HdrS":
            raise GuestError(f"{path} is not an x86 bzImage (no 'HdrS' boot header); pass arch/x86/boot/bzImage")
        offset = int.from_bytes(header[0x20E:0x210], "little")
        if offset == 0:
            return ""
        f.seek(offset + 0x200)
        raw = f.read(256)
    return raw.split(b"\0", 1)[0].split(b" ", 1)[0].decode(errors="replace")


class DebianKernels:
    """Downloads Debian kernel packages through kdamon's private apt configuration."""

    def __init__(self, cache: Path, progress: Progress) -> None:
        self.root = cache / "apt"
        self.kernels = cache / "kernels"
        self.say = progress

    def fetch(self, recipe: Recipe) -> Kernel:
        suite = recipe.get_str("suite")
        pattern = re.compile(recipe.get_str("package"))
        try:
            package, version = self.newest(recipe)
        except GuestError as err:
            cached = self._newest_cached(recipe)
            if cached is None:
                raise
            self.say(f"kdamon: using the cached {cached.name} kernel ({err})")
            return cached
        match = pattern.fullmatch(package)
        assert match is not None
        kver = match.group("version")
        target = self.kernels / recipe.name / f"{package}_{version}"
        if not (target / ".complete").exists():
            self._download(recipe, suite, package, kver, target)
        return self._kernel_at(recipe, target, kver)

    def newest(self, recipe: Recipe) -> tuple[str, str]:
        """The newest package of the recipe's suite matching its ``package`` pattern, and its Debian version."""
        suite = recipe.get_str("suite")
        self._update_lists(suite)
        return self._newest(suite, re.compile(recipe.get_str("package")))

    def download(self, suite: str, packages: list[str], dest: Path) -> None:
        """``apt-get download`` the packages (``name`` or ``name=version``) into ``dest``."""
        run_command(["apt-get", *self._apt_options(suite), "-q", "download", *packages], "apt-get download", cwd=dest)

    def _kernel_at(self, recipe: Recipe, target: Path, kver: str) -> Kernel:
        config = target / "config"
        modules = target / "modules"
        return Kernel(
            name=recipe.name,
            vmlinuz=target / "vmlinuz",
            version=kver,
            config=config if config.exists() else None,
            modules_dir=modules if modules.is_dir() else None,
            cmdline=tuple(recipe.get_list("cmdline")),
        )

    def _newest_cached(self, recipe: Recipe) -> Kernel | None:
        pattern = re.compile(recipe.get_str("package"))
        best: tuple[tuple[int, ...], Path, str] | None = None
        for entry in (self.kernels / recipe.name).glob("*/.complete"):
            package = entry.parent.name.split("_", 1)[0]
            match = pattern.fullmatch(package)
            if match:
                key = _version_key(match.group("version"))
                if best is None or key > best[0]:
                    best = (key, entry.parent, match.group("version"))
        return None if best is None else self._kernel_at(recipe, best[1], best[2])

    def _apt_options(self, suite: str) -> list[str]:
        state = self.root / suite
        return [
            f"-o=Dir::Etc::sourcelist={state / 'sources.list'}",
            "-o=Dir::Etc::sourceparts=/dev/null",
            f"-o=Dir::State::Lists={state / 'lists'}",
            f"-o=Dir::Cache={state / 'cache'}",
            "-o=Dir::State::status=/dev/null",
            "-o=APT::Sandbox::User=root",
            "-o=Debug::NoLocking=1",
        ]

    def _update_lists(self, suite: str) -> None:
        if shutil.which("apt-get") is None:
            raise GuestError(
                "apt-get is not available: fetching Debian kernels needs a Debian-like host, or pass --kernel PATH"
            )
        if not DEBIAN_KEYRING.exists():
            raise GuestError(f"{DEBIAN_KEYRING} is missing: apt-get install debian-archive-keyring")
        state = self.root / suite
        (state / "lists" / "partial").mkdir(parents=True, exist_ok=True)
        (state / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
        sources = state / "sources.list"
        line = f"deb [signed-by={DEBIAN_KEYRING}] {DEBIAN_MIRROR} {suite} main\n"
        if not sources.exists() or sources.read_text() != line:
            sources.write_text(line)
        stamp = state / "updated"
        if stamp.exists() and time.time() - stamp.stat().st_mtime < APT_LISTS_MAX_AGE_S:
            return
        self.say(f"kdamon: updating the package lists of Debian {suite} (private apt configuration)")
        run_command(["apt-get", *self._apt_options(suite), "-q", "update"], f"apt-get update for {suite}")
        stamp.touch()

    def _newest(self, suite: str, pattern: re.Pattern[str]) -> tuple[str, str]:
        prefix = pattern.pattern.split("(", 1)[0].replace("\\", "")
        names = run_command(["apt-cache", *self._apt_options(suite), "pkgnames", prefix], "apt-cache pkgnames").split()
        matches = [(m.group("version"), n) for n in names if (m := pattern.fullmatch(n))]
        if not matches:
            raise GuestError(f"no package matching {pattern.pattern} in Debian {suite}")
        package = max(matches, key=lambda vm: _version_key(vm[0]))[1]
        show = run_command(["apt-cache", *self._apt_options(suite), "show", package], f"apt-cache show {package}")
        version = next((ln.split(":", 1)[1].strip() for ln in show.splitlines() if ln.startswith("Version:")), None)
        if version is None:
            raise GuestError(f"apt-cache show {package} printed no Version")
        return package, version

    def _download(self, recipe: Recipe, suite: str, package: str, kver: str, target: Path) -> None:
        packages = [package] + [p.format(version=kver) for p in recipe.get_list("extra_packages")]
        self.say(f"kdamon: downloading {', '.join(packages)}")
        with tempfile.TemporaryDirectory(prefix="kdamon-kernel-") as tmp:
            work = Path(tmp)
            self.download(suite, packages, work)
            tree = work / "tree"
            for deb in sorted(work.glob("*.deb")):
                run_command(["dpkg-deb", "-x", str(deb), str(tree)], f"dpkg-deb -x {deb.name}")
            staging = target.with_name(target.name + ".tmp")
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            vmlinuz = tree / recipe.get_str("vmlinuz").format(version=kver)
            if not vmlinuz.is_file():
                raise GuestError(f"{package} has no {vmlinuz.relative_to(tree)}; update vm-images/{recipe.name}.toml")
            shutil.copy2(vmlinuz, staging / "vmlinuz")
            config = tree / recipe.get_str("config").format(version=kver)
            if config.is_file():
                shutil.copy2(config, staging / "config")
            if "modules" in recipe.data:
                modules = tree / recipe.get_str("modules").format(version=kver)
                if modules.is_dir():
                    shutil.copytree(modules, staging / "modules", symlinks=True)
            (staging / ".complete").write_text(f"{package}\n")
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", version))


def run_command(cmd: list[str], what: str, cwd: Path | None = None) -> str:
    """Run a tool to completion; its output.  Raises :class:`GuestError` with its last lines when it fails."""
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    except OSError as err:
        raise GuestError(f"{what} failed: {err}") from err
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise GuestError(f"{what} failed (exit {done.returncode}): {' / '.join(tail)}")
    return done.stdout
