"""Every command that takes a path answers a bad one with ``kdamon: error: PATH: REASON`` and exit
code 1, never a traceback: a missing path, the wrong kind (a directory where a file is expected, a
file where a directory is), an unreadable or unwritable one, and a file whose read fails.

How "unreadable" is produced: root reads and writes through any permission bits by its
capabilities CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH, so when the tests run as root the commands
run in a subprocess that dropped both (from its bounding set, before exec), as a user without
them is: then a file with mode 000 is unreadable (an input), a directory with mode 555
unwritable (an output's directory) and one with mode 000 unlistable (a directory input), even
to their owner.  A failing read needs no set-up: ``/proc/self/mem`` opens, and reading its first
page fails with EIO for everyone (page 0 is never mapped).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kdamon.backend.host import ENV_VARS, HostPaths
from kdamon.cli.main import build_parser
from kdamon.model import RegionState
from kdamon.model.snapshot import Snapshot
from kdamon.records.types import RecordMeta
from kdamon.records.writer import RecordWriter

CHECKOUT = Path(__file__).resolve().parents[2]
PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2

# (what the path is to the command, its arguments with {path} for the path under test).
# "file": a file it reads; "output": a file it writes; "dir": a directory it reads.
COMMANDS: list[tuple[str, list[str]]] = [
    ("file", ["report", "heatmap", "{path}"]),
    ("file", ["report", "wss", "{path}"]),
    ("file", ["report", "raw", "{path}"]),
    ("file", ["report", "access", "{path}"]),
    ("file", ["report", "trace", "{path}"]),
    ("output", ["report", "heatmap", "--png", "{path}", "{record}"]),
    ("file", ["start", "{path}"]),
    ("file", ["tune", "0", "{path}"]),
    ("output", ["record", "--output", "{path}", "--pid", "1"]),
    ("output", ["check", "--kernel", "none", "--junit", "{path}"]),
    ("output", ["check", "--kernel", "none", "--json", "{path}"]),
    ("dir", ["check", "--source", "{path}"]),
    ("file", ["check", "--kernel", "{path}"]),
    ("file", ["vm", "run", "--kernel", "{path}", "--", "true"]),
    ("file", ["vm", "run", "--image", "{path}", "--", "true"]),
    ("dir", ["vm", "run", "--modules", "{path}", "--", "true"]),
    ("dir", ["vm", "run", "--share", "{path}", "--", "true"]),
]

# Path arguments the walk leaves out, and why.
NOT_WALKED = {
    ("exporter", "--sysfs-root"): "hidden test hook: a missing tree is a machine without DAMON",
    ("exporter", "--module-root"): "hidden test hook: a missing tree is a machine without DAMON modules",
    ("check", "--build-dir"): "created when missing",
    ("record", "--ready-file"): "a file the recorded command creates; a stale one is removed",
}

# Runs each command in this (possibly unprivileged) process and reports its exit code and stderr.
DRIVER = r"""
import contextlib, io, json, sys, traceback
from kdamon.cli.main import main
results = []
for argv in json.load(sys.stdin):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
        except BaseException:
            code = "traceback"
            traceback.print_exc(file=err)
    results.append([code, err.getvalue()])
json.dump(results, sys.stdout)
"""


def _path_arguments(parser: argparse.ArgumentParser, command: str = "") -> Iterator[tuple[str, str]]:
    """(command, option or positional) for every argument that takes a path, through the subcommands."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _path_arguments(sub, f"{command} {name}".strip())
        elif action.type is Path or (action.metavar or "").endswith("PATH"):
            yield command, action.option_strings[-1] if action.option_strings else action.dest


def _walks(argv: list[str], command: str, argument: str) -> bool:
    """Whether ``argv`` puts the path under test into ``argument`` of ``kdamon command``."""
    words = command.split()
    before = argv[argv.index("{path}") - 1]
    if argv[: len(words)] != words:
        return False
    return before == argument if argument.startswith("-") else not before.startswith("-")


def test_every_path_argument_is_walked() -> None:
    for command, argument in _path_arguments(build_parser()):
        if (command, argument) not in NOT_WALKED:
            assert any(_walks(argv, command, argument) for _, argv in COMMANDS), (
                f"`kdamon {command}` takes a path ({argument}) that this test does not walk"
            )


@pytest.fixture
def base(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    for p in tmp_path.rglob("*"):  # let pytest's clean-up in
        if p.is_dir():
            p.chmod(0o755)


def _without_dac_capabilities() -> None:
    """In the child before exec: drop what lets root ignore permission bits."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _bad_paths(base: Path, kind: str) -> dict[str, Path]:
    """The bad paths for a command that takes ``kind``, by the errno text each must produce."""
    locked = base / "locked"
    if not locked.exists():
        (base / "a-file").write_text("not a directory\n")
        (base / "a-dir").mkdir()
        (base / "unreadable").write_text("kdamon cannot read this\n")
        (base / "unreadable").chmod(0)
        (base / "unlisted").mkdir(mode=0)
        locked.mkdir(mode=0o555)
    missing = base / "missing" / "input.yaml"
    if kind == "dir":
        return {
            "No such file or directory": missing,
            "Not a directory": base / "a-file",
            "Permission denied": base / "unlisted",
        }
    if kind == "output":
        return {
            "No such file or directory": missing,
            "Is a directory": base / "a-dir",
            "Permission denied": locked / "out",
        }
    return {
        "No such file or directory": missing,
        "Is a directory": base / "a-dir",
        "Permission denied": base / "unreadable",
        "Input/output error": Path("/proc/self/mem"),
    }


def _record(base: Path) -> Path:
    path = base / "rec.kdr"
    with RecordWriter(path, RecordMeta(producer="engine", sample_us=5000, aggr_us=100000)) as writer:
        writer.append(Snapshot.of_rows(0, 0, 0, 0, (RegionState(0, 4096, 1, 0),), 5000, 100000))
    return path


def _run_unprivileged(base: Path, argvs: list[list[str]]) -> list[tuple[int | str, str]]:
    paths = HostPaths.under(base / "host")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(CHECKOUT),
        "KDAMON_CACHE": str(base / "a-file" / "cache"),
        "KDAMON_ACCEL": "tcg",
        "HOME": str(base),
    }
    env |= {var: str(getattr(paths, field)) for field, var in ENV_VARS.items()}
    done = subprocess.run(
        [sys.executable, "-c", DRIVER],
        input=json.dumps(argvs),
        capture_output=True,
        text=True,
        env=env,
        cwd=base,
        timeout=120,
        check=False,
        preexec_fn=_without_dac_capabilities if os.geteuid() == 0 else None,
    )
    assert done.returncode == 0, done.stderr
    return [(code, err) for code, err in json.loads(done.stdout)]


def test_bad_paths_are_named_without_a_traceback(base: Path) -> None:
    record = _record(base)
    cases = []
    for kind, argv in COMMANDS:
        for reason, path in _bad_paths(base, kind).items():
            cases.append((reason, path, [a.format(path=path, record=record) for a in argv]))
    results = _run_unprivileged(base, [argv for _, _, argv in cases])
    failures = []
    for (reason, path, argv), (code, err) in zip(cases, results, strict=True):
        last = err.strip().splitlines()[-1] if err.strip() else ""
        if code != 1 or "Traceback" in err or not last.startswith(f"kdamon: error: {path}: {reason}"):
            failures.append(f"kdamon {' '.join(argv)}: exit {code}, stderr {err!r}")
    assert not failures, "\n".join(failures)
    assert len(cases) == 4 * sum(kind == "file" for kind, _ in COMMANDS) + 3 * sum(
        kind != "file" for kind, _ in COMMANDS
    )
