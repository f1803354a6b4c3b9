"""The kernel's own DAMON selftests (``tools/testing/selftests/damon``), run in the check's guest.

Host side (:func:`prepare`): take the tests from the Debian ``linux-source``
package of the kernel's version (fetched through kdamon's private apt
configuration), build their C helpers with ``gcc -static``, write the
``kselftest-list.txt`` that ``run_kselftest.sh`` reads, and pack the tools
the tests need that the guest's busybox lacks or gets wrong: bash, GNU grep,
procps pgrep, util-linux dmesg (``-C``) and GNU timeout (the runner calls
``/usr/bin/timeout --foreground``), with their shared libraries.

Guest side (:func:`run_selftests`): put those tools where the scripts look
(``/bin/bash``, ``/usr/bin/timeout``, ``/usr/bin/env``), run
``run_kselftest.sh -c damon`` and turn its TAP lines into check results.
See ``docs/kernel-selftests.md`` of the shared documentation for the
requirements.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from kdamon.check.results import CheckResult, Status
from kdamon.errors import GuestError, KdamonError

__all__ = ["MISSING_IN_GUEST", "TIMING_DEPENDENT", "apply_limits", "listed_tests", "parse_tap", "prepare", "run_selftests"]

Progress = Callable[[str], None]
TOOLS = ("bash", "grep", "pgrep", "dmesg", "timeout")
SUITES = ("trixie", "trixie-backports", "bookworm", "bookworm-backports")
_PACE = ("a workload pass under TCG emulation is slower than the 5 ms sampling interval this test assumes, "
         "so accesses are missed")
_GIVE_UP = ("under TCG emulation the kdamond runs slower than nominal, and Linux 6.2-6.13 give a tried-regions "
            "request up after two apply intervals of wall time, so the regions may never be collected")
# Selftests that depend on emulation-sensitive timing, and why they cannot pass reliably under TCG.
TIMING_DEPENDENT = {
    "sysfs_update_schemes_tried_regions_wss_estimation.py": _PACE,
    "damos_apply_interval.py": _PACE,
    "damon_nr_regions.py": _GIVE_UP,
    "damos_tried_regions.py": _GIVE_UP,
}
# Failures that only say the guest lacks something the test needs (matched in the test's output).
MISSING_IN_GUEST = {
    "drgn": "needs drgn and the kernel's debug information, which kdamon's guest does not provide",
}
TEST_TIMEOUT_S = 300  # run_kselftest.sh's default 45 s is too short for sysfs.sh under TCG
_MEMBERS = ("tools/testing/selftests/damon", "tools/testing/selftests/kselftest",
            "tools/testing/selftests/run_kselftest.sh", "tools/testing/selftests/kselftest.h")
_RESULT = re.compile(r"^(ok|not ok) \d+ selftests: damon: (\S+)(?: # (.*))?$")


# -- host side ------------------------------------------------------------------


def listed_tests(makefile: str) -> list[str]:
    """``TEST_PROGS`` of the damon selftests' Makefile, in order."""
    text = makefile.replace("\\\n", " ")
    progs: list[str] = []
    for m in re.finditer(r"^TEST_PROGS\s*\+?=\s*(.*)$", text, re.MULTILINE):
        progs += m.group(1).split()
    return progs


def prepare(kernel: str, *, progress: Progress | None = None) -> Path:
    """A directory with the selftests of ``kernel``'s version, ready to share into its guest (cached)."""
    from kdamon.check.abi import parse_release
    from kdamon.vm.kernels import cache_dir, resolve_kernel

    say = progress or (lambda _m: None)
    release = resolve_kernel(kernel, progress=say).version
    try:
        major, minor = parse_release(release)
    except ValueError as err:
        raise GuestError(f"{kernel}: {err}; the selftests are taken from the linux-source of that version") from err
    deb, source_version = _source_deb(kernel, f"{major}.{minor}", say)
    target = cache_dir() / "selftests" / f"{major}.{minor}-{source_version}"
    if (target / ".complete").exists():
        return target
    say(f"kdamon: preparing the DAMON selftests of linux-source-{major}.{minor} {source_version}")
    staging = target.with_name(target.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    _extract(deb, staging / "kst")
    _build_helpers(staging / "kst" / "damon")
    makefile = (staging / "kst" / "damon" / "Makefile").read_text()
    (staging / "kst" / "kselftest-list.txt").write_text("".join(f"damon:{t}\n" for t in listed_tests(makefile)))
    _pack_tools(staging / "tools")
    (staging / ".complete").write_text(f"{deb.name}\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def _source_deb(kernel: str, version: str, say: Progress) -> tuple[Path, str]:
    from kdamon.vm.kernels import DebianKernels, Recipe, cache_dir, load_recipe

    suites = list(SUITES)
    if "/" not in kernel:
        suite = load_recipe(kernel).data.get("suite")
        if isinstance(suite, str):
            suites.insert(0, suite)
    apt = DebianKernels(cache_dir(), say)
    pattern = rf"linux-source-(?P<version>{re.escape(version)})"
    errors = []
    for suite in dict.fromkeys(suites):
        try:
            package, deb_version = apt.newest(Recipe(f"selftests-{version}", "", "source", {"suite": suite, "package": pattern}))
        except GuestError as err:
            errors.append(f"{suite}: {err}")
            continue
        sources = cache_dir() / "sources"
        sources.mkdir(parents=True, exist_ok=True)
        found = sorted(sources.glob(f"{package}_{deb_version.replace(':', '%3a')}_*.deb"))
        if not found:
            apt.download(suite, [f"{package}={deb_version}"], sources)
            found = sorted(sources.glob(f"{package}_*.deb"))
        if found:
            return found[-1], deb_version
    raise GuestError(f"no Debian linux-source-{version} package found ({'; '.join(errors)}); "
                     "the selftests come from it: check the kernel version or the network")


def _run(cmd: Sequence[str], what: str, cwd: Path | None = None) -> None:
    try:
        done = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, check=False)
    except OSError as err:
        raise GuestError(f"{what} failed: {err}") from err
    if done.returncode != 0:
        raise GuestError(f"{what} failed (exit {done.returncode}): {done.stderr.strip()[-300:]}")


def _extract(deb: Path, dest: Path) -> None:
    """The selftests' damon directory and runner from the package's source tarball."""
    with tempfile.TemporaryDirectory(prefix="kdamon-selftests-") as tmp:
        work = Path(tmp)
        _run(["sh", "-c", f"dpkg-deb --fsys-tarfile '{deb}' | tar -x --wildcards '*.tar.xz'"], f"unpacking {deb.name}", cwd=work)
        tarballs = list(work.rglob("linux-source-*.tar.xz"))
        if not tarballs:
            raise GuestError(f"{deb.name} holds no linux-source tarball")
        tree = work / "tree"
        tree.mkdir()
        _run(["tar", "-xJf", str(tarballs[0]), "-C", str(tree), "--strip-components=1", "--wildcards",
              *(f"*/{m}" for m in _MEMBERS)], f"extracting the selftests from {tarballs[0].name}")
        selftests = tree / "tools" / "testing" / "selftests"
        if not (selftests / "damon").is_dir():
            raise GuestError(f"{tarballs[0].name} has no tools/testing/selftests/damon")
        shutil.copytree(selftests, dest, symlinks=True)


def _build_helpers(damon: Path) -> None:
    """``gcc -static`` each C helper next to the tests (the guest has no compiler)."""
    if shutil.which("gcc") is None:
        raise GuestError("building the selftests' C helpers needs gcc and a static libc: apt-get install gcc libc6-dev")
    for source in sorted(damon.glob("*.c")):
        _run(["gcc", "-static", "-O2", "-I", str(damon.parent), "-o", str(source.with_suffix("")), str(source)],
             f"gcc -static {source.name}")


def _pack_tools(tools: Path) -> None:
    """Host binaries of ``TOOLS`` and the shared libraries the guest lacks (all but libc and the loader)."""
    (tools / "bin").mkdir(parents=True)
    (tools / "lib").mkdir()
    for name in TOOLS:
        path = shutil.which(name, path="/usr/bin:/bin")
        if path is None:
            raise GuestError(f"the selftests need {name} from the host: install it (bash, grep, procps, util-linux, coreutils)")
        real = Path(path).resolve()
        if "busybox" in real.name:
            raise GuestError(f"{path} is busybox; the selftests need the GNU/procps/util-linux {name}")
        shutil.copy2(real, tools / "bin" / name)
        out = subprocess.run(["ldd", str(real)], capture_output=True, text=True, check=False).stdout
        for lib in re.findall(r"=>\s*(/\S+)", out):
            name_ = Path(lib).name
            if not name_.startswith(("libc.so", "ld-linux")) and not (tools / "lib" / name_).exists():
                shutil.copy2(Path(lib).resolve(), tools / "lib" / name_)


# -- guest side -----------------------------------------------------------------


def _link(path: str, target: Path | str) -> None:
    p = Path(path)
    if not p.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.symlink_to(target)


def parse_tap(lines: Iterable[tuple[float, str]]) -> list[CheckResult]:
    """Results of ``run_kselftest.sh`` output, given as ``(monotonic time, line)``."""
    results: list[CheckResult] = []
    output: list[str] = []
    last: float | None = None
    for stamp, line in lines:
        if last is None:
            last = stamp
        m = _RESULT.match(line.strip())
        if m is None:
            if line.startswith("# ") and not line.startswith(("# selftests: ", "# timeout set", "# overriding timeout")):
                output.append(line[2:].strip())
            continue
        verdict, test, directive = m.group(1), m.group(2), (m.group(3) or "").strip()
        if directive.upper().startswith("SKIP"):
            status = Status.SKIP
        else:
            status = Status.PASS if verdict == "ok" else Status.FAIL
        tail = " / ".join(line for line in output[-3:] if line)
        message = "" if status is Status.PASS else "; ".join(filter(None, [directive, tail]))
        if status is Status.SKIP and not message:
            message = "skipped by the test (exit 4)"
        results.append(CheckResult(f"selftests.{test}", f"kernel selftest damon/{test}", status, message,
                                   stamp - last, group="selftests"))
        output, last = [], stamp
    return results


def run_selftests(directory: Path) -> list[CheckResult]:
    """Run the prepared selftests in this guest (never on a host: they rewrite DAMON's sysfs)."""
    if os.environ.get("KDAMON_GUEST") != "1":
        raise KdamonError("the kernel's DAMON selftests rewrite every DAMON sysfs file: run them only in a kdamon guest")
    tools = directory / "tools"
    _link("/bin/bash", tools / "bin" / "bash")
    _link("/usr/bin/timeout", tools / "bin" / "timeout")
    _link("/usr/bin/env", "/bin/env")
    work = Path(tempfile.mkdtemp(prefix="kdamon-kst-"))
    shutil.copytree(directory / "kst", work / "kst", symlinks=True)
    env = dict(os.environ)
    env["PATH"] = f"{tools / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
    env["LD_LIBRARY_PATH"] = str(tools / "lib")
    proc = subprocess.Popen(["./run_kselftest.sh", "-c", "damon", "-o", str(TEST_TIMEOUT_S)], cwd=work / "kst", env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, errors="replace")
    assert proc.stdout is not None
    with proc:
        results = parse_tap((time.monotonic(), line) for line in proc.stdout)
    shutil.rmtree(work, ignore_errors=True)
    if not results:
        results.append(CheckResult("selftests.run", "the kernel's DAMON selftests ran", Status.ERROR,
                                   f"run_kselftest.sh printed no result (exit {proc.returncode})", group="selftests"))
    return results


def apply_limits(results: Sequence[CheckResult], accel: str) -> list[CheckResult]:
    """Selftest failures that only reflect the guest become skips that say why.

    Always: tests that stop because a dependency is missing from the guest
    (``MISSING_IN_GUEST``).  Under TCG: timing-dependent tests
    (``TIMING_DEPENDENT``).
    """
    out = []
    for r in results:
        test = r.id.removeprefix("selftests.")
        why = None
        if r.status is Status.FAIL and r.group == "selftests":
            why = next((reason for word, reason in MISSING_IN_GUEST.items() if word in r.message), None)
            if why is None and accel == "tcg" and test in TIMING_DEPENDENT:
                why = f"timing-dependent, not reliable under TCG: {TIMING_DEPENDENT[test]}"
        out.append(r if why is None else CheckResult(r.id, r.title, Status.SKIP, f"{why} (it failed: {r.message})",
                                                     r.duration_s, r.group))
    return out
