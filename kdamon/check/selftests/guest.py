"""The prepared selftests run in kdamon's guest (never on a host: they rewrite DAMON's sysfs).

The packed tools go where the scripts look for them (``/bin/bash``,
``/usr/bin/timeout``, ``/usr/bin/env``), the tests run from a writable
copy with ``run_kselftest.sh -c damon`` (each with ``TEST_TIMEOUT_S`` in the
directory's ``settings``), and their TAP lines become check results as they
come.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from kdamon.check.results import CheckResult, Status
from kdamon.check.selftests.tap import parse_tap
from kdamon.errors import KdamonError
from kdamon.testing.guest import in_guest

__all__ = ["TEST_TIMEOUT_S", "run_selftests"]

TEST_TIMEOUT_S = 300  # run_kselftest.sh's default 45 s is too short for sysfs.sh under TCG


def set_timeout(damon: Path, seconds: int) -> None:
    """Each test's timeout in ``damon/settings``, which every kselftest runner reads (6.1's has no ``-o``)."""
    settings = damon / "settings"
    kept = settings.read_text().splitlines() if settings.is_file() else []
    settings.write_text(
        "".join(f"{line}\n" for line in kept if not line.startswith("timeout=")) + f"timeout={seconds}\n"
    )


def _link(path: str, target: Path | str) -> None:
    p = Path(path)
    if not p.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.symlink_to(target)


def run_selftests(directory: Path) -> list[CheckResult]:
    """Run the selftests :func:`~kdamon.check.selftests.prepare.prepare` made in ``directory``, in this guest."""
    if not in_guest():
        raise KdamonError(
            "the kernel's DAMON selftests rewrite every DAMON sysfs file: run them only in a kdamon guest"
        )
    tools = directory / "tools"
    _link("/bin/bash", tools / "bin" / "bash")
    _link("/usr/bin/timeout", tools / "bin" / "timeout")
    _link("/usr/bin/env", "/bin/env")
    work = Path(tempfile.mkdtemp(prefix="kdamon-kst-"))
    shutil.copytree(directory / "kst", work / "kst", symlinks=True)
    set_timeout(work / "kst" / "damon", TEST_TIMEOUT_S)
    env = dict(os.environ)
    env["PATH"] = f"{tools / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
    env["LD_LIBRARY_PATH"] = str(tools / "lib")
    proc = subprocess.Popen(
        ["./run_kselftest.sh", "-c", "damon"],
        cwd=work / "kst",
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        errors="replace",
    )
    assert proc.stdout is not None
    with proc:
        results = parse_tap((time.monotonic(), line) for line in proc.stdout)
    shutil.rmtree(work, ignore_errors=True)
    if not results:
        results.append(
            CheckResult(
                "selftests.run",
                "the kernel's DAMON selftests ran",
                Status.ERROR,
                f"run_kselftest.sh printed no result (exit {proc.returncode})",
                group="selftests",
            )
        )
    return results
