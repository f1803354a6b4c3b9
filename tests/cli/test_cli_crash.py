"""Crash consistency: ``kdamon start``, ``tune`` and ``stop`` killed after each of their writes in
turn leave nothing that ``kdamon status`` and ``kdamon stop`` cannot recover.

The kill is simulated in this process: after its N-th write (a sysfs write, or an ownership
record written or removed) the command's process is dead: that write is done, and every later
file-system or registry call of the command, clean-up handlers included, raises ``Killed``
(a ``BaseException``, so that nothing catches it as an error).  The next commands run on a new
Host (a new process, as far as kdamon can tell) attached to the same emulated kernel, whose
running kdamonds are read back from the tree.  ``tests/guest/test_crash_guest.py`` does the same
with a real SIGKILL on a real kernel.

After each kill: ``status`` shows kdamon's directory as kdamon's (or as free while nothing was
written into it yet); at every other kill point the killed command is run again and succeeds
(``start`` takes the half-written directory over); then ``stop`` unconfigures the directory and
leaves no ownership record, and the foreign kdamond beside it is byte-identical and still runs.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from backend_fixtures import tree
from cli_helpers import Kdamon
from fake_damon import FakeDamonFs
from kdamon.backend.host import Host, HostPaths
from kdamon.kernel.ownership import OwnedKdamond, OwnershipRegistry

SCHEMES = (
    "--scheme",
    "action=pageout,sz=4K-max,nr_accesses=0-0,age=5s-max",
    "--scheme",
    "action=stat,quota_size=1M,quota_reset=1s,filter=reject:anon",
)
START = ("start", "--target-pid", "4242", "--aggr", "50ms", *SCHEMES)


class Killed(BaseException):
    """The process running the command died (SIGKILL)."""


class Clock:
    """Counts a command's writes; the process dies right after write ``kill_after``."""

    def __init__(self, kill_after: int) -> None:
        self.kill_after = kill_after
        self.writes = 0
        self.dead = False

    def check(self) -> None:
        if self.dead:
            raise Killed

    def wrote(self) -> None:
        self.writes += 1
        if self.writes == self.kill_after:
            self.dead = True
            raise Killed


class DyingFs:
    """The emulated kernel as a process that may die sees it."""

    def __init__(self, fake: FakeDamonFs, clock: Clock) -> None:
        self.fake, self.clock = fake, clock

    def write(self, path: Path, data: bytes) -> None:
        self.clock.check()
        try:
            self.fake.write(path, data)
        finally:
            self.clock.wrote()

    def __getattr__(self, name: str) -> Callable[..., Any]:
        call = getattr(self.fake, name)

        def checked(*args: Any) -> Any:
            self.clock.check()
            return call(*args)

        return checked


class DyingRegistry(OwnershipRegistry):
    def __init__(self, state_dir: Path, clock: Clock) -> None:
        super().__init__(state_dir)
        self.clock = clock

    def get(self, root: Path, index: int) -> OwnedKdamond | None:
        self.clock.check()
        return super().get(root, index)

    def _write(self, root: Path, index: int, pid: int | None, fingerprint: str, *, pending: bool) -> OwnedKdamond:
        self.clock.check()
        entry = super()._write(root, index, pid, fingerprint, pending=pending)
        self.clock.wrote()
        return entry

    def forget(self, root: Path, index: int) -> None:
        self.clock.check()
        super().forget(root, index)
        self.clock.wrote()


def attached(base: Path, version: str, clock: Clock | None = None) -> Host:
    """A new process's Host on the emulated kernel under ``base``."""
    paths = HostPaths.under(base)
    fake = FakeDamonFs(paths.sysfs_root, version, attach=True)
    if clock is None:
        return Host(paths, fs=fake)
    host = Host(paths, fs=DyingFs(fake, clock))
    host.__dict__["owners"] = DyingRegistry(paths.state_dir, clock)
    return host


def foreign_beside_a_free_directory(fake: FakeDamonFs) -> None:
    """Another tool's kdamond 0, running, and an unconfigured directory 1 (raw writes)."""
    k = fake.base / "kdamonds"
    fake.write(k / "nr_kdamonds", b"2")
    fake.write(k / "0" / "contexts" / "nr_contexts", b"1")
    fake.write(k / "0" / "contexts" / "0" / "targets" / "nr_targets", b"1")
    fake.write(k / "0" / "contexts" / "0" / "targets" / "0" / "pid_target", b"4242")
    fake.write(k / "0" / "state", b"on")


def records(base: Path) -> list[str]:
    return sorted(p.name for p in (base / "run").glob("*") if p.name != "lock")


class Scenario:
    """A machine set up for one kill point: optionally a foreign kdamond, optionally kdamon's own."""

    def __init__(self, base: Path, version: str, kdamon: Kdamon, *, foreign: bool, started: bool) -> None:
        self.base, self.version, self.kdamon = base, version, kdamon
        fake = FakeDamonFs(HostPaths.under(base).sysfs_root, version)
        self.foreign = foreign
        if foreign:
            foreign_beside_a_free_directory(fake)
        self.ours = "sysfs:1" if foreign else "sysfs:0"
        self.foreign_before = tree(fake.base / "kdamonds" / "0") if foreign else {}
        if started:
            self.run(START)

    def run(self, argv: tuple[str, ...], clock: Clock | None = None) -> tuple[int, str, str]:
        return self.kdamon(attached(self.base, self.version, clock), *argv)

    def check_recovered(self, retry: tuple[str, ...] | None) -> None:
        """``status``, then ``retry`` (the killed command again, if given), then ``stop``."""
        code, out, err = self.run(("status", "--json"))
        assert code == 0, err
        shown = {entry["id"]: entry for entry in json.loads(out)}
        if self.foreign:
            assert (shown["sysfs:0"]["owner"], shown["sysfs:0"]["state"]) == ("foreign", "on")
        if self.ours in shown:
            mine = shown[self.ours]
            assert mine["owner"] == "kdamon" or (mine["owner"] == "free" and not records(self.base)), mine
            paths = HostPaths.under(self.base)
            record = OwnershipRegistry(paths.state_dir).get(paths.sysfs_root, int(self.ours.partition(":")[2]))
            if record is not None and record.pending:
                assert f"`kdamon stop {self.ours}` removes it" in mine["note"]
        if retry is not None and not (retry[0] == "start" and shown.get(self.ours, {}).get("state") == "on"):
            code, out, err = self.run(retry)
            assert code == 0, err
            if retry[0] == "start":
                assert out.strip() == self.ours  # the same directory, taken over
        code, _, err = self.run(("stop",))
        assert code == 0, err
        assert records(self.base) == []
        kdamonds = HostPaths.under(self.base).sysfs_root / "kdamonds"
        ours = kdamonds / self.ours.partition(":")[2]
        if ours.exists():
            assert (ours / "state").read_text() == "off\n"
            assert (ours / "contexts" / "nr_contexts").read_text() == "0\n"
        if self.foreign:
            assert tree(kdamonds / "0") == self.foreign_before


@pytest.fixture
def trees(tmp_path: Path) -> Iterator[Path]:
    """Where the emulated kernels go: a tmpfs when there is one (the emulation creates thousands
    of small files; on a busy disk each costs half a millisecond), else ``tmp_path``."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(prefix="kdamon-crash-", dir=shm) as name:
        yield Path(name)


def kill_at_every_write(
    trees: Path, kdamon: Kdamon, command: tuple[str, ...], *, version: str, foreign: bool, started: bool
) -> int:
    """Kill ``command`` after its 1st, 2nd, ... write until it completes; the kill points survived."""
    point = 0
    while True:
        point += 1
        scenario = Scenario(trees / f"{point}", version, kdamon, foreign=foreign, started=started)
        clock = Clock(point)
        try:
            code, _, err = scenario.run(command, clock)
        except Killed:
            scenario.check_recovered(command if point % 2 else None)
            shutil.rmtree(scenario.base)
            continue
        assert code == 0 and clock.writes == point - 1, err  # completed before write number ``point``
        return point - 1


# 7.3's extra files (core and ops filters) are killed through in the guest (tests/guest/test_crash_guest.py).
@pytest.mark.parametrize(
    ("name", "command", "version", "foreign", "started"),
    [
        ("start beside a foreign kdamond", START, "6.12", True, False),
        ("start creating the first kdamond directory", START, "6.12", False, False),
        ("tune", ("tune", "sysfs:1", "--aggr", "200ms", "--scheme", "action=cold,age=1s-max"), "6.12", True, True),
        ("stop", ("stop", "sysfs:1"), "7.3", True, True),
    ],
)
def test_every_kill_point_is_recovered(
    trees: Path,
    kdamon: Kdamon,
    capsys: pytest.CaptureFixture[str],
    name: str,
    command: tuple[str, ...],
    version: str,
    foreign: bool,
    started: bool,
) -> None:
    survived = kill_at_every_write(trees, kdamon, command, version=version, foreign=foreign, started=started)
    with capsys.disabled():
        print(
            f"\ncrash test: kdamon {name} ({version}) killed after each of its {survived} writes: "
            f"all {survived} kill points recovered"
        )
    assert survived >= (4 if command[0] == "stop" else 20)  # the loop did kill, many times
