"""``kdamon check --mutants``: build each mutant of a tree's DAMON code, boot it, run the suite, classify it.

The developer's tree is never written: mutants live in a *shadow* of it
under kdamon's cache, a tree of symbolic links to the tree's files in which
the mutated files are real copies.  The shadow is built out of tree once
(the unmodified build and its suite run are the baseline), then each mutant
is written into its copy, built incrementally (only its object and the link
are redone; ccache keeps the rest), compared with the unmodified object,
booted and checked, and the copy is restored, whatever happens (an error,
Ctrl-C or SIGTERM).  The suite stops at the first failure of a check that
passed on the baseline, so a killed mutant costs less than a full run.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Protocol

from kdamon.check.mutants import Mutant, sample
from kdamon.check.mutation import MutantOutcome, MutantStatus, MutationReport, killers
from kdamon.check.results import KernelReport, Status
from kdamon.errors import GuestError

__all__ = ["Builder", "Checker", "Shadow", "ShadowBuild", "check_mutants", "generate", "run_mutants", "shadow_for"]

MIN_TIMEOUT_S = 240.0
_RECORD = ".kdamon-mutated-files"
Progress = Callable[[str], None]


class Builder(Protocol):
    def build(self, what: str) -> Path:
        """Build the shadow tree; the image.  Raises :class:`GuestError` when the compiler fails."""
        ...

    def object_bytes(self, file: str) -> bytes | None:
        """The compiled object of ``file`` (relative to the tree), None if it was not built."""
        ...


Checker = Callable[[Path, Collection[str], float | None, str | None], KernelReport]
"""``checker(image, stop_on_failure_of, timeout_s, select)``: the suite's results on that kernel image.

``timeout_s`` None is the default timeout; ``select`` a pytest ``-k``
expression narrowing the run (None: every check).
"""


class Shadow:
    """A tree of symbolic links to ``tree``'s files at ``root``; the files to mutate are real copies."""

    def __init__(self, tree: Path, root: Path) -> None:
        self.tree = tree
        self.root = root

    def create(self, files: Collection[str]) -> None:
        """(Re)make the shadow; ``files`` and every file a previous run mutated become fresh real copies.

        Fresh copies have a new modification time, so make rebuilds their
        objects, which a run that was killed may have left mutated.
        """
        owned = set(files)
        record = self.root.parent / _RECORD
        if record.is_file():
            owned.update(line for line in record.read_text().splitlines() if line)
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text("".join(f"{f}\n" for f in sorted(owned)))
        if self.root.exists():
            shutil.rmtree(self.root)
        self.root.parent.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["cp", "-as", str(self.tree.resolve()), str(self.root)], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise GuestError(f"cannot make a shadow of {self.tree} in {self.root}: {done.stderr.strip()[-300:]}")
        if (self.root / ".git").exists():
            shutil.rmtree(self.root / ".git")
        for file in owned:
            if (self.tree / file).is_file():
                self.write(file, (self.tree / file).read_bytes())

    def write(self, file: str, content: bytes) -> None:
        """Replace the shadow's ``file`` with ``content`` (atomically, with a new modification time)."""
        path = self.root / file
        tmp = path.with_name(path.name + ".kdamon-tmp")
        tmp.write_bytes(content)
        os.replace(tmp, path)

    def read(self, file: str) -> bytes:
        return (self.root / file).read_bytes()


class ShadowBuild:
    """The real :class:`Builder`: the shadow configured once (tinyconfig + the DAMON and debugging fragments), then built."""

    def __init__(self, shadow: Shadow, out: Path, progress: Progress | None = None) -> None:
        from kdamon.check.source import TreeBuild

        self._build = TreeBuild(shadow.root, out, progress)
        self._configured = False

    def build(self, what: str) -> Path:
        if not self._configured:
            self._build.configure()
            self._configured = True
        return self._build.bzimage(what=what, fresh_log=True)

    def object_bytes(self, file: str) -> bytes | None:
        path = self._build.out / Path(file).with_suffix(".o")
        return path.read_bytes() if path.is_file() else None


def shadow_for(tree: Path, cache: Path) -> tuple[Shadow, Path]:
    """The shadow of ``tree`` and its build directory, in kdamon's cache (one pair per tree path)."""
    base = cache / "mutants" / hashlib.sha256(str(tree).encode()).hexdigest()[:12]
    return Shadow(tree, base / "src"), base / "build"


def generate(tree: Path, files: Sequence[str], count: int, seed: int) -> list[Mutant]:
    """``count`` mutants of each file (paths relative to ``tree``), validated before anything is built."""
    if count < 1:
        raise GuestError(f"--count {count}: ask for at least one mutant per file")
    mutants: list[Mutant] = []
    for file in files:
        path = tree / file
        if not file.endswith(".c") or not path.is_file():
            raise GuestError(f"--files {file}: not a C file of {tree}; give paths like mm/damon/core.c")
        found = sample(file, path.read_text(errors="surrogateescape"), count, seed)
        if not found:
            raise GuestError(f"--files {file}: no line of it can be mutated (no function body found)")
        mutants += found
    return mutants


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt meanwhile, so that the restoring ``finally`` blocks run."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_sig: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt("SIGTERM")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_mutants(
    mutants: Sequence[Mutant],
    *,
    source: str,
    seed: int,
    count: int,
    shadow: Shadow,
    builder: Builder,
    checker: Checker,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> MutationReport:
    """Build and check the unmodified shadow, then every mutant; the shadow is unmodified afterwards."""
    say = progress or (lambda _m: None)
    files = sorted({m.file for m in mutants})
    started = clock()
    with _sigterm_interrupts():
        shadow.create(files)
        originals = {f: shadow.read(f) for f in files}
        try:
            t = clock()
            image = builder.build("compiling the unmodified tree")
            baseline_build_s = clock() - t
            objects = {f: builder.object_bytes(f) for f in files}
            unbuilt = [f for f, o in objects.items() if o is None]
            if unbuilt:
                raise GuestError(
                    f"{', '.join(unbuilt)} is not compiled in this configuration "
                    "(tinyconfig + the DAMON and debugging fragments): choose files that are"
                )
            say("kdamon: checking the unmodified tree (the baseline)")
            baseline = checker(image, (), None, None)
            passed = frozenset(r.id for r in baseline.results if r.status is Status.PASS)
            if not passed:
                raise GuestError(
                    "no check passed on the unmodified tree, so no mutant can be killed; "
                    "run kdamon check --source on it to see why"
                )
            timeout = max(MIN_TIMEOUT_S, 2.5 * baseline.elapsed_s)
            outcomes = []
            for number, mutant in enumerate(mutants, 1):
                outcome = _one(mutant, shadow, originals, objects, builder, checker, baseline, passed, timeout, clock)
                outcomes.append(outcome)
                say(
                    f"kdamon: mutant {number}/{len(mutants)} {mutant.file}:{mutant.line} {mutant.operator}: "
                    f"{outcome.status.value}" + (f" by {outcome.killed_by[0]}" if outcome.killed_by else "")
                )
        finally:
            for file, content in originals.items():
                if shadow.read(file) != content:
                    shadow.write(file, content)
    return MutationReport(source, seed, count, baseline, tuple(outcomes), baseline_build_s, clock() - started)


def _one(
    mutant: Mutant,
    shadow: Shadow,
    originals: dict[str, bytes],
    objects: dict[str, bytes | None],
    builder: Builder,
    checker: Checker,
    baseline: KernelReport,
    passed: frozenset[str],
    timeout: float,
    clock: Callable[[], float],
) -> MutantOutcome:
    original = originals[mutant.file]
    shadow.write(mutant.file, mutant.apply(original.decode(errors="surrogateescape")).encode(errors="surrogateescape"))
    try:
        t = clock()
        try:
            image = builder.build(f"compiling mutant {mutant.id}")
        except GuestError as err:
            return MutantOutcome(mutant, MutantStatus.NOT_BUILT, detail=str(err)[-300:], build_s=clock() - t)
        build_s = clock() - t
        if builder.object_bytes(mutant.file) == objects[mutant.file]:
            return MutantOutcome(
                mutant,
                MutantStatus.EQUIVALENT,
                build_s=build_s,
                detail="the compiled object is identical to the unmodified one",
            )
        t = clock()
        found, flaky, message = _verdict(image, checker, baseline, passed, timeout)
        check_s = clock() - t
    finally:
        shadow.write(mutant.file, original)
    note = f"failed once and passed when run again (flukes, not kills): {', '.join(flaky)}" if flaky else ""
    if not found:
        return MutantOutcome(mutant, MutantStatus.SURVIVED, build_s=build_s, check_s=check_s, detail=note)
    return MutantOutcome(
        mutant, MutantStatus.KILLED, found, "; ".join(filter(None, [message[:300], note])), build_s, check_s
    )


_HOST_CHECKS = ("kernel.", "suite.")
MAX_FLUKES = 2


def _verdict(
    image: Path, checker: Checker, baseline: KernelReport, passed: frozenset[str], timeout: float
) -> tuple[tuple[str, ...], list[str], str]:
    """``(killing checks, checks that failed by fluke, the first killer's message)`` of a built mutant.

    A failure under emulation can be a fluke, so a kill by suite checks
    counts only when one of their groups fails again in a second boot; a
    crash, a WARNING or an incomplete run (the host's own checks) counts at
    once.  After a fluke the suite runs again without the flaky checks
    (at most ``MAX_FLUKES`` times), so that later checks still get to see
    the mutant.
    """
    flaky: list[str] = []
    watched = passed
    while True:
        report = checker(image, watched, timeout, None)
        found = tuple(k for k in killers(baseline, report) if k in watched)
        if not found:
            return (), flaky, ""
        message = next(r.message for r in report.results if r.id == found[0])
        if any(k.startswith(_HOST_CHECKS) for k in found):
            return found, flaky, message
        groups = " or ".join(f"test_{g}" for g in sorted({k.split(".", 1)[0] for k in found}))
        again = [k for k in killers(baseline, checker(image, watched, timeout, groups)) if k in watched]
        if again:
            return found, flaky, message
        flaky += found
        if len(flaky) > MAX_FLUKES:
            return (), flaky, ""
        watched = watched - set(found)


def check_mutants(
    source: Path | None,
    files: Sequence[str],
    *,
    count: int,
    seed: int,
    select: str | None = None,
    timeout: float = 1500.0,
    cpus: int | None = None,
    build_dir: Path | None = None,
    output: Callable[[str], None] | None = None,
    progress: Progress | None = None,
) -> MutationReport:
    """``kdamon check --mutants``: mutants of ``files`` of the tree ``source`` (None: the linux-6.1-dbgfs source).

    ``select`` (a pytest ``-k`` expression), ``timeout`` (of the baseline
    run), ``cpus`` and ``output`` (the guests' console) are as for
    :func:`kdamon.check.host.check_kernel`.
    """
    from kdamon.check.host import check_kernel
    from kdamon.check.source import FRAGMENT_RECIPE, check_tree
    from kdamon.vm.build import source_tree
    from kdamon.vm.kernels import cache_dir, load_recipe

    say = progress or (lambda _m: None)
    if source is None:
        tree = source_tree(load_recipe(FRAGMENT_RECIPE), cache_dir(), say)
        name = f"the {FRAGMENT_RECIPE} source"
    else:
        tree, name = check_tree(source), str(source)
    mutants = generate(tree, files, count, seed)
    shadow, default_build = shadow_for(tree, cache_dir())
    out = build_dir or default_build
    say(f"kdamon: {len(mutants)} mutants of {', '.join(files)} in {name}; building in {out}")

    def checker(image: Path, stop: Collection[str], timeout_s: float | None, narrow: str | None) -> KernelReport:
        both = f"({select}) and ({narrow})" if select and narrow else select or narrow
        return check_kernel(
            str(image),
            select=both,
            timeout=timeout_s or timeout,
            cpus=cpus,
            stop_on_failure_of=stop,
            output=output,
            progress=say,
        )

    return run_mutants(
        mutants,
        source=name,
        seed=seed,
        count=count,
        shadow=shadow,
        builder=ShadowBuild(shadow, out, say),
        checker=checker,
        progress=say,
    )
