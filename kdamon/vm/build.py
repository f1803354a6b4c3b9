"""Guest kernels built from source: recipes of ``kind = "build"`` in ``vm-images/``.

The source comes from a Debian ``linux-source-*`` package fetched through
kdamon's private apt configuration (:class:`DebianKernels`).  The kernel is
configured with ``make <base_config>`` (e.g. ``tinyconfig``) plus the recipe's
config fragment, every option of the fragment is checked in the resulting
``.config``, and the bzImage is cached under
``<cache>/kernels/<recipe>/<source version>-<recipe hash>/``.  ccache is used
when installed; the compiler cache lives in ``<cache>/ccache`` unless
``CCACHE_DIR`` says otherwise.

:class:`Make` is kdamon's one make driver: the recipe builds here,
``kdamon check --source`` and its mutants (out of tree, ``O=``) and the
kernel selftests' C helpers all run make through it, every line logged.
"""

from __future__ import annotations

import collections
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from kdamon.errors import GuestError
from kdamon.vm.kernels import DebianKernels, Kernel, Progress, Recipe, recipes_dir, run_command

COMPILED_REPORT_EVERY = 250  # a progress line every this many compiled files
LOG_TAIL_LINES = 25
_OPTION_SET = re.compile(r"(CONFIG_[A-Za-z0-9_]+)=(.*)")
_OPTION_UNSET = re.compile(r"# (CONFIG_[A-Za-z0-9_]+) is not set")


def build_kernel(recipe: Recipe, cache: Path, progress: Progress) -> Kernel:
    """Return the recipe's kernel, building it (once per source version and recipe) if needed."""
    fragment_path = recipes_dir() / recipe.get_str("config_fragment")
    if not fragment_path.is_file():
        raise GuestError(f"vm-images/{recipe.name}.toml names {fragment_path.name}, which does not exist beside it")
    fragment = fragment_path.read_text()
    digest = recipe_digest(recipe, fragment)
    builds = cache / "kernels" / recipe.name
    apt = DebianKernels(cache, progress)
    try:
        package, version = apt.newest(recipe)
    except GuestError as err:
        cached = _newest_cached(builds, digest)
        if cached is None:
            raise
        progress(f"kdamon: using the cached {recipe.name} kernel ({err})")
        return _kernel_at(recipe, cached)
    target = builds / f"{version}-{digest}"
    if (target / ".complete").exists():
        return _kernel_at(recipe, target)
    work = cache / "build"
    work.mkdir(parents=True, exist_ok=True)
    with _locked(work / f"{recipe.name}.lock"):
        if not (target / ".complete").exists():  # another process may have built it meanwhile
            deb = source_package(apt, recipe.get_str("suite"), package, version, cache / "sources")
            _Build(recipe, work, fragment, progress).run(deb, package, version, target)
    return _kernel_at(recipe, target)


def source_tree(recipe: Recipe, cache: Path, progress: Progress) -> Path:
    """The recipe's kernel source, unpacked once per source version under ``<cache>/sources/<recipe>/``.

    The tree is kdamon's own (``kdamon check --mutants`` builds copies of it);
    an older version's tree is removed when a newer one is unpacked.
    """
    apt = DebianKernels(cache, progress)
    package, version = apt.newest(recipe)
    trees = cache / "sources" / recipe.name
    done = trees / version.replace(":", "%3a")
    if (done / ".complete").exists():
        return done / "src"
    trees.mkdir(parents=True, exist_ok=True)
    with _locked(trees / "unpack.lock"):
        if not (done / ".complete").exists():
            deb = source_package(apt, recipe.get_str("suite"), package, version, cache / "sources")
            for old in trees.iterdir():
                if old.is_dir():
                    shutil.rmtree(old)
            progress(f"kdamon: unpacking {deb.name} into {done}")
            unpack_source(recipe, deb, package, done)
            (done / ".complete").write_text(f"{package} {version}\n")
    return done / "src"


def unpack_source(recipe: Recipe, deb: Path, package: str, dest: Path) -> None:
    """The kernel tarball of a ``linux-source`` .deb unpacked into ``dest/src`` (its top directory stripped)."""
    match = re.compile(recipe.get_str("package")).fullmatch(package)
    if match is None:
        raise GuestError(f"{package} does not match the package pattern of vm-images/{recipe.name}.toml")
    tarball = recipe.get_str("tarball").format(version=match.group("version"))
    src = dest / "src"
    src.mkdir(parents=True)
    run_command(["dpkg-deb", "-x", str(deb), str(dest / "deb")], f"dpkg-deb -x {deb.name}")
    if not (dest / "deb" / tarball).is_file():
        raise GuestError(f"{deb.name} has no {tarball}; update 'tarball' in vm-images/{recipe.name}.toml")
    run_command(
        ["tar", "-xf", str(dest / "deb" / tarball), "-C", str(src), "--strip-components=1"], f"tar -xf {tarball}"
    )
    shutil.rmtree(dest / "deb")


def recipe_digest(recipe: Recipe, fragment: str) -> str:
    """A short hash of what decides the build besides the source: the recipe and its fragment."""
    h = hashlib.sha256()
    h.update(repr(sorted(recipe.data.items())).encode())
    h.update(b"\0")
    h.update(fragment.encode())
    return h.hexdigest()[:12]


def parse_fragment(text: str) -> dict[str, str]:
    """The options a config fragment asks for: ``{"CONFIG_X": "y", "CONFIG_Y": "n", ...}``."""
    wanted: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if m := _OPTION_UNSET.fullmatch(line):
            wanted[m.group(1)] = "n"
        elif m := _OPTION_SET.fullmatch(line):
            wanted[m.group(1)] = m.group(2)
        elif line and not line.startswith("#"):
            raise GuestError(f"config fragment line {number} is neither CONFIG_X=value nor a comment: {line!r}")
    return wanted


def options_not_landed(wanted: Mapping[str, str], config_text: str) -> list[str]:
    """Fragment options that ``.config`` does not have as asked, as ``CONFIG_X=y (got n)``."""
    got = parse_fragment(
        "\n".join(ln for ln in config_text.splitlines() if _OPTION_SET.fullmatch(ln) or _OPTION_UNSET.fullmatch(ln))
    )
    return [
        f"{name}={value} (got {got.get(name, 'n')})" for name, value in wanted.items() if got.get(name, "n") != value
    ]


def _kernel_at(recipe: Recipe, target: Path) -> Kernel:
    return Kernel(
        name=recipe.name,
        vmlinuz=target / "vmlinuz",
        version=(target / "release").read_text().strip(),
        config=target / "config",
        cmdline=tuple(recipe.get_list("cmdline")),
    )


def _newest_cached(builds: Path, digest: str) -> Path | None:
    done = sorted(builds.glob(f"*-{digest}/.complete"), key=lambda p: p.stat().st_mtime)
    return done[-1].parent if done else None


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def source_package(apt: DebianKernels, suite: str, package: str, version: str, sources: Path) -> Path:
    """The .deb of ``package`` ``version`` from Debian ``suite``, downloaded once into ``sources``.

    Older versions of the package in ``sources`` are removed when a new one is downloaded.
    """
    sources.mkdir(parents=True, exist_ok=True)
    found = sorted(sources.glob(f"{package}_{version.replace(':', '%3a')}_*.deb"))
    if found:
        return found[0]
    for old in sources.glob(f"{package}_*.deb"):
        old.unlink()
    apt.download(suite, [f"{package}={version}"], sources)
    found = sorted(sources.glob(f"{package}_*.deb"))
    if not found:
        raise GuestError(f"apt-get download {package}={version} left no .deb in {sources}")
    return found[0]


class _Build:
    """One build of a recipe in ``<work>/<recipe>/``, logged to ``<work>/<recipe>.log``."""

    def __init__(self, recipe: Recipe, work: Path, fragment: str, progress: Progress) -> None:
        self.recipe = recipe
        self.tree = work / recipe.name
        self.fragment = fragment
        self.say = progress
        self.make = Make(self.tree / "src", work / f"{recipe.name}.log", progress, cache=work.parent)

    def run(self, deb: Path, package: str, version: str, target: Path) -> None:
        name = self.recipe.name
        with_ccache = (
            "with ccache" if self.make.ccache else "without ccache (apt-get install ccache makes rebuilds fast)"
        )
        self.say(
            f"kdamon: building the {name} kernel from {package} {version} with {self.make.jobs} jobs, {with_ccache}; "
            "a cold build takes about 11 minutes on two cores"
        )
        shutil.rmtree(self.tree, ignore_errors=True)
        try:
            self.make.new_log()
            self._unpack(deb, package)
            self._configure()
            image = self.make.bzimage(f"compiling {name}")
            release = self.make.run(["-s", "kernelrelease"], "reading the kernel release")[-1].strip()
            self._install(image, target, package, version, release)
            self.say(f"kdamon: built {name} {release}: {target / 'vmlinuz'}; removing the source tree")
        finally:
            shutil.rmtree(self.tree, ignore_errors=True)

    def _unpack(self, deb: Path, package: str) -> None:
        self.say(f"kdamon: unpacking {deb.name}")
        unpack_source(self.recipe, deb, package, self.tree)

    def _configure(self) -> None:
        base, fragment = self.recipe.get_str("base_config"), self.recipe.get_str("config_fragment")
        self.say(f"kdamon: configuring: make {base} + {fragment}")
        missing = self.make.configure(base, parse_fragment(self.fragment), f"vm-images/{fragment}")
        if missing:
            raise GuestError(
                f"vm-images/{fragment}: these options did not land in .config: "
                f"{', '.join(missing)}; add the options they depend on to the fragment (see their Kconfig 'depends on')"
            )

    def _install(self, image: Path, target: Path, package: str, version: str, release: str) -> None:
        staging = target.with_name(target.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        shutil.copy2(image, staging / "vmlinuz")
        shutil.copy2(self.make.config, staging / "config")
        (staging / "release").write_text(release + "\n")
        (staging / ".complete").write_text(f"{package} {version}\n")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)


def render_fragment(wanted: Mapping[str, str]) -> str:
    """Config fragment lines for ``wanted`` (the inverse of :func:`parse_fragment`)."""
    return "".join(f"{name}={value}\n" if value != "n" else f"# {name} is not set\n" for name, value in wanted.items())


class Make:
    """kdamon's make driver: ``make -jN`` in ``src``, every line of its output appended to ``log_path``.

    ``out`` makes the build out of tree (``O=out``); with ``cache``, the
    compilers go through ccache when it is installed, its files in
    ``<cache>/ccache`` unless ``CCACHE_DIR`` says otherwise.  ``args`` are
    more make arguments (variables, ``-f``).  A failed make raises
    :class:`GuestError` with the output's last lines and the log's path;
    while it compiles, a progress line comes every ``COMPILED_REPORT_EVERY``
    compiled files.
    """

    def __init__(
        self,
        src: Path,
        log_path: Path,
        progress: Progress,
        *,
        out: Path | None = None,
        cache: Path | None = None,
        args: Sequence[str] = (),
    ) -> None:
        self.src = src
        self.objtree = out or src
        self.log_path = log_path
        self.say = progress
        self.jobs = os.cpu_count() or 1
        self.command = ["make", f"-j{self.jobs}", *([f"O={out}"] if out is not None else []), *args]
        self.env = dict(os.environ)
        self.ccache = cache is not None and shutil.which("ccache") is not None
        if cache is not None and self.ccache:
            self.command += ["CC=ccache gcc", "HOSTCC=ccache gcc"]
            self.env.setdefault("CCACHE_DIR", str(cache / "ccache"))

    @property
    def config(self) -> Path:
        """The kernel's ``.config``."""
        return self.objtree / ".config"

    @property
    def image(self) -> Path:
        """Where ``make bzImage`` leaves the kernel."""
        return self.objtree / "arch" / "x86" / "boot" / "bzImage"

    def new_log(self) -> None:
        """Start the log afresh (the next makes append to it)."""
        self.log_path.write_text("")

    def configure(self, base: str, wanted: Mapping[str, str], source: str) -> list[str]:
        """``make BASE``, ``wanted`` appended to ``.config`` (a comment names its ``source``), ``make olddefconfig``.

        The options of ``wanted`` that did not land in ``.config`` as asked (see :func:`options_not_landed`).
        """
        self.run([base], f"make {base}")
        with self.config.open("a") as config:
            config.write(f"\n# kdamon: {source}\n{render_fragment(wanted)}")
        self.run(["olddefconfig"], "make olddefconfig")
        return options_not_landed(wanted, self.config.read_text())

    def bzimage(self, what: str) -> Path:
        """``make bzImage``; the image."""
        self.run(["bzImage"], what)
        if not self.image.is_file():
            raise GuestError(f"{what}: make bzImage left no {self.image}; see {self.log_path}")
        return self.image

    def run(self, targets: Sequence[str], what: str) -> list[str]:
        """Make ``targets``; the last lines of the output (at least one, maybe empty)."""
        tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
        compiled = 0
        try:
            proc = subprocess.Popen(
                [*self.command, *targets], cwd=self.src, env=self.env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
            )  # fmt: skip
        except OSError as err:
            raise GuestError(f"{what} failed: {err}; install the build tools (scripts/install-test-deps.sh)") from err
        assert proc.stdout is not None
        with proc, self.log_path.open("a") as log:
            for line in proc.stdout:
                log.write(line)
                tail.append(line.rstrip("\n"))
                if line.startswith("  CC "):
                    compiled += 1
                    if compiled % COMPILED_REPORT_EVERY == 0:
                        self.say(f"kdamon: {what}: {compiled} files compiled ({line.split()[-1]})")
        if proc.returncode != 0:
            raise GuestError(
                f"{what} failed (exit {proc.returncode}): {' / '.join(list(tail)[-3:])}; full log: {self.log_path}"
            )
        return list(tail) or [""]
