"""Crash consistency on a real kernel: ``kdamon start`` with two schemes, SIGKILLed right after
each of its writes in turn (a sysfs write, or an ownership record written or removed), beside a
running foreign kdamond.  After each kill, ``kdamon status`` shows the half-staged kdamond as
kdamon's, ``kdamon stop`` removes it and its ownership record, and the foreign kdamond's files are
byte-identical.  (The host test ``tests/cli/test_cli_crash.py`` covers tune, stop and the
creation of the first directory on the emulated kernel.)

The command runs in a forked child whose kdamon I/O counts the writes; after write N the child
sends itself SIGKILL, so no clean-up handler of kdamon runs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kdamon.backend.host import Host, HostPaths
from kdamon.cli import common
from kdamon.cli.main import main
from kdamon.kernel.ownership import OwnedKdamond, OwnershipRegistry
from kdamon.kernel.sysfs_io import OsFs, SysfsIO
from kdamon.testing.raw_sysfs import KDAMONDS, raw_write, reset_damon

SCHEMES = (
    "--scheme",
    "action=pageout,sz=4K-max,nr_accesses=0-0,age=5s-max",
    "--scheme",
    "action=stat,quota_size=1M,quota_reset=1s",
)

pytestmark = pytest.mark.skipif(
    not (KDAMONDS / "nr_kdamonds").exists(), reason="no DAMON sysfs interface in this kernel"
)


def _tree(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): p.read_text() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; b = bytearray(1 << 24); time.sleep(900)"])
    yield proc
    proc.kill()
    proc.wait()


@pytest.fixture
def foreign(sleeper: subprocess.Popen[bytes]) -> Iterator[int]:
    """Another tool's kdamond 0, running, beside a free directory 1; yields its pid."""
    reset_damon()
    raw_write(KDAMONDS / "nr_kdamonds", "2")
    ctx = KDAMONDS / "0" / "contexts"
    raw_write(ctx / "nr_contexts", "1")
    raw_write(ctx / "0" / "operations", "vaddr")
    raw_write(ctx / "0" / "targets" / "nr_targets", "1")
    raw_write(ctx / "0" / "targets" / "0" / "pid_target", str(sleeper.pid))
    raw_write(KDAMONDS / "0" / "state", "on")
    yield sleeper.pid
    reset_damon()


def _killed_after(write: int, argv: list[str], state_dir: Path) -> bool:
    """Run ``kdamon argv`` in a child that SIGKILLs itself after its ``write``-th write;
    False if it finished first (with exit code 0)."""
    child = os.fork()
    if child == 0:  # pragma: no cover - the child ends in os._exit or SIGKILL
        code = 99
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            writes = [0]

            def wrote() -> None:
                writes[0] += 1
                if writes[0] == write:
                    os.kill(os.getpid(), signal.SIGKILL)

            class CountingFs(OsFs):
                def write(self, path: Path, data: bytes) -> None:
                    try:
                        super().write(path, data)
                    finally:
                        wrote()

            original_write, original_forget = OwnershipRegistry._write, OwnershipRegistry.forget

            def counted_write(self: OwnershipRegistry, *args: object, **kwargs: object) -> OwnedKdamond:
                entry = original_write(self, *args, **kwargs)  # type: ignore[arg-type]
                wrote()
                return entry

            def counted_forget(self: OwnershipRegistry, root: Path, index: int) -> None:
                original_forget(self, root, index)
                wrote()

            OwnershipRegistry._write = counted_write  # type: ignore[method-assign]
            OwnershipRegistry.forget = counted_forget  # type: ignore[method-assign]
            host = Host(HostPaths(state_dir=state_dir))
            host.__dict__["io"] = SysfsIO(CountingFs())
            common.make_host = lambda: host
            code = main(argv)
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    if os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == signal.SIGKILL
        return True
    assert os.WEXITSTATUS(status) == 0
    return False


def _kdamon(state_dir: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``kdamon argv`` as a new process would run it (a new Host), in this process."""
    common.make_host = lambda: Host(HostPaths(state_dir=state_dir))
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_start_killed_after_each_write_is_recovered(
    foreign: int, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(common, "make_host", common.make_host)  # restored after the test
    state_dir = tmp_path / "run"
    foreign_before = _tree(KDAMONDS / "0")
    start = ["start", "--backend", "sysfs", "--target-pid", str(foreign), "--aggr", "50ms", *SCHEMES]
    point = 0
    while _killed_after(point + 1, start, state_dir):
        point += 1
        code, out, err = _kdamon(state_dir, capsys, "status", "--json")
        assert code == 0, err
        shown = {entry["id"]: entry for entry in json.loads(out)}
        assert (shown["sysfs:0"]["owner"], shown["sysfs:0"]["state"]) == ("foreign", "on")
        left = list(state_dir.glob("kdamond-*.json"))
        assert shown["sysfs:1"]["owner"] == ("kdamon" if left else "free"), (point, shown["sysfs:1"])
        code, _, err = _kdamon(state_dir, capsys, "stop")
        assert code == 0, err
        assert list(state_dir.glob("*.json")) == [], point
        assert (KDAMONDS / "1" / "state").read_text() == "off\n"
        assert (KDAMONDS / "1" / "contexts" / "nr_contexts").read_text() == "0\n"
        assert _tree(KDAMONDS / "0") == foreign_before, point
    with capsys.disabled():
        print(
            f"\ncrash test in the guest: kdamon start killed after each of its {point} writes: "
            f"all {point} kill points recovered"
        )
    assert point >= 20  # the loop did kill, many times
    assert (KDAMONDS / "1" / "state").read_text() == "on\n"  # the start that was not killed
    code, _, err = _kdamon(state_dir, capsys, "stop")
    assert code == 0, err
    assert _tree(KDAMONDS / "0") == foreign_before
