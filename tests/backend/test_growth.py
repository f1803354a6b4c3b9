"""Appending targets to a running kernel kdamond by commit, on an emulated kernel and an emulated /proc:
the running targets keep their index (and, committed without regions, their regions); a target whose
process is gone is committed as kthreadd; new ones come with their initial regions."""

from __future__ import annotations

import subprocess
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from backend_fixtures import fake_host
from fake_machine import RoutedFs
from fake_tracefs import FakeTracefs
from kdamon.backend.growth import GrowingTargets, kernel_thread_pid
from kdamon.backend.host import Host, HostPaths
from kdamon.backend.sysfs_backend import SysfsBackend
from kdamon.backend.types import TargetAdded
from kdamon.errors import KdamonWarning, KernelError
from kdamon.model import Context, Kdamond, NrRegions, Region, Snapshot, Target
from kdamon.trace.events import AGGREGATED
from kdamon.trace.synth import pages

PF_KTHREAD = 0x00200000
PAGE = 4096
# Three mappings with two gaps: the three regions are the mappings themselves.
MAPS = ((0x10000, 0x20000), (0x100000, 0x140000), (0x7F0000000, 0x7F0010000))


def proc_entry(
    root: Path, pid: int, *, start: int, state: str = "S", flags: int = 0, maps: tuple[tuple[int, int], ...] = MAPS
) -> None:
    """``/proc/PID/stat`` (state, parent, ..., flags, ..., start time) and ``/proc/PID/maps``."""
    entry = root / str(pid)
    entry.mkdir(parents=True, exist_ok=True)
    fields = [state, "1", "0", "0", "0", "-1", str(flags), *["0"] * 12, str(start), *["0"] * 10]
    (entry / "stat").write_text(f"{pid} (workload) {' '.join(fields)}\n")
    (entry / "maps").write_text("".join(f"{lo:x}-{hi:x} rw-p 00000000 00:00 0\n" for lo, hi in maps))


def target_dirs(base: Path) -> list[tuple[str, int]]:
    """Each target directory of kdamond 0: its pid and its number of regions."""
    targets = base / "kdamonds" / "0" / "contexts" / "0" / "targets"
    return [
        (
            (targets / str(i) / "pid_target").read_text().strip(),
            int((targets / str(i) / "regions" / "nr_regions").read_text()),
        )
        for i in range(int((targets / "nr_targets").read_text()))
    ]


@pytest.fixture
def proc(tmp_path: Path) -> Path:
    root = tmp_path / "proc"
    proc_entry(root, 2, start=1, flags=PF_KTHREAD | 0x40)
    for pid, start in ((100, 50), (101, 60), (102, 70)):
        proc_entry(root, pid, start=start)
    return root


@pytest.mark.parametrize("version", ["6.12", "7.3"])
def test_commits_append_targets_in_order(tmp_path: Path, proc: Path, version: str) -> None:
    host, fake = fake_host(tmp_path, version)
    fake.live_pids |= {2, 100, 101, 102}
    kdamond = Kdamond(contexts=(Context(targets=(Target(pid=100),), nr_regions=NrRegions(3, 100)),))
    index, _ = host.sysfs.launch(kdamond)
    wanted = [100]
    growing = GrowingTargets(kdamond, lambda: wanted, proc_root=proc)
    assert growing.grown() is None, "nothing new"

    wanted = [100, 101, 100]
    grown = growing.grown()
    assert grown is not None
    first, child = grown.contexts[0].targets
    assert (first.pid, first.regions) == (100, ())  # the kernel keeps the regions of a target without any
    assert child.pid == 101 and len(child.regions) >= 3
    assert (child.regions[0].start, child.regions[-1].end) == (MAPS[0][0], MAPS[-1][1])
    assert all(r.start < r.end and r.start % PAGE == 0 for r in child.regions)
    host.sysfs.commit(index, grown)
    assert growing.committed() == [TargetAdded(1, 101)]
    assert target_dirs(fake.base) == [("100", 0), ("101", len(child.regions))]

    (proc / "101" / "stat").unlink()  # exited and reaped: its pid can no longer be committed
    wanted = [100, 101, 102]
    grown = growing.grown()
    assert grown is not None and [t.pid for t in grown.contexts[0].targets] == [100, 2, 102]
    host.sysfs.commit(index, grown)
    assert growing.committed() == [TargetAdded(2, 102)]
    assert [pid for pid, _ in target_dirs(fake.base)] == ["100", "2", "102"]
    assert host.sysfs.state(index) == "on"

    proc_entry(proc, 101, start=99)  # the pid reused by another process: still the stand-in
    proc_entry(proc, 100, start=50, state="Z")  # a zombie has no memory, and its pid goes at reaping
    proc_entry(proc, 103, start=80)
    fake.live_pids.add(103)
    wanted = [100, 101, 102, 103]
    grown = growing.grown()
    assert grown is not None and [t.pid for t in grown.contexts[0].targets] == [2, 2, 102, 103]
    assert growing.pids == [100, 101, 102]


def test_a_process_gone_before_it_is_committed_is_left_out(proc: Path) -> None:
    kdamond = Kdamond(contexts=(Context(targets=(Target(pid=100),)),))
    wanted = [100, 101]
    growing = GrowingTargets(kdamond, lambda: wanted, proc_root=proc)
    proc_entry(proc, 101, start=60, state="Z")
    assert growing.grown() is None
    wanted = [100, 101, 102]
    grown = growing.grown()
    assert grown is not None and [t.pid for t in grown.contexts[0].targets] == [100, 102]
    assert growing.committed() == [TargetAdded(1, 102)]


def test_a_restart_keeps_the_order_and_the_regions_given(proc: Path) -> None:
    given = (Region(0x100000, 0x120000),)
    kdamond = Kdamond(contexts=(Context(ops="fvaddr", targets=(Target(pid=100, regions=given),)),))
    wanted = [100, 101]
    growing = GrowingTargets(kdamond, lambda: wanted, proc_root=proc)
    grown = growing.grown()
    assert grown is not None and [t.regions for t in grown.contexts[0].targets] == [(), given]  # fvaddr: the same
    (proc / "100" / "stat").unlink()
    restarted = growing.restarted()
    assert [(t.pid, t.regions) for t in restarted.contexts[0].targets] == [(2, given), (101, given)]
    assert growing.committed() == [TargetAdded(1, 101)]
    again = growing.restarted()
    assert [(t.pid, t.regions) for t in again.contexts[0].targets] == [(2, given), (101, given)]
    assert growing.committed() == []


def test_no_stand_in_outside_the_initial_pid_namespace(tmp_path: Path) -> None:
    proc_entry(tmp_path, 2, start=1)  # pid 2 is a process here, not kthreadd
    with pytest.raises(KernelError, match="initial pid namespace"):
        kernel_thread_pid(tmp_path)


# -- the sysfs stream: commits while the trace is read, and a restart when 6.12 ends the kdamond ----------

KDAMOND_PID = 90001  # the emulated kernel's first kdamond thread (its second: 90002)
Sleepers = tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]


def aggregations(count: int) -> bytes:
    """``damon_aggregated`` events of target 0, one region, ``count`` aggregations."""
    events = [(1_000_000_000 + i * 100_000_000, AGGREGATED, (0, 1, 0x10000, 0x20000, 5, i)) for i in range(count)]
    return b"".join(pages(events, KDAMOND_PID))


class CommitHook(RoutedFs):
    """An emulated machine that runs ``before_commit`` when a commit is written to ``state``."""

    before_commit: Callable[[], None] = staticmethod(lambda: None)

    def _state(self, kdir: Path, keyword: str) -> None:
        if keyword == "commit":
            self.before_commit()
        super()._state(kdir, keyword)


def machine(tmp_path: Path, version: str) -> tuple[Host, CommitHook]:
    tracing = FakeTracefs(tmp_path / "tracing", cpus=1)
    trace = aggregations(3)
    fs = CommitHook(tmp_path / "admin", tracing, {KDAMOND_PID: trace, KDAMOND_PID + 1: trace}, version)
    return Host(HostPaths.under(tmp_path), fs=fs), fs


@pytest.fixture
def sleepers() -> Iterator[tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]]:
    """A target's process and the one to append."""
    root, child = subprocess.Popen(["sleep", "120"]), subprocess.Popen(["sleep", "120"])
    yield root, child
    for process in (root, child):
        process.kill()
        process.wait()


def stream_until_added(host: Host, root: int, wanted: list[int]) -> list[object]:
    records: list[object] = []
    kdamond = Kdamond(contexts=(Context(targets=(Target(pid=root),)),))

    def enough() -> bool:
        return any(isinstance(r, TargetAdded) for r in records) and sum(isinstance(r, Snapshot) for r in records) >= 3

    records.extend(SysfsBackend(host).stream(kdamond, enough, lambda: wanted))
    return records


@pytest.mark.parametrize("version", ["6.12", "7.3"])
def test_the_stream_commits_the_processes_it_is_asked_for(tmp_path: Path, version: str, sleepers: Sleepers) -> None:
    host, fs = machine(tmp_path, version)
    root, child = sleepers
    fs.live_pids |= {root.pid, child.pid}
    seen: list[list[tuple[str, int]]] = []
    fs.before_commit = lambda: seen.append(target_dirs(fs.base))
    records = stream_until_added(host, root.pid, [root.pid, child.pid])
    assert [r for r in records if isinstance(r, TargetAdded)] == [TargetAdded(1, child.pid)]
    assert records.index(TargetAdded(1, child.pid)) < len(records) - 1  # announced before the next snapshots
    assert [s for s, _ in seen[0]] == [str(root.pid), str(child.pid)]
    assert (fs.base / "kdamonds" / "0" / "contexts" / "nr_contexts").read_text().strip() == "0"  # released


@pytest.mark.parametrize("version", ["6.12", "7.3"])
def test_a_target_that_exits_during_the_commit(tmp_path: Path, version: str, sleepers: Sleepers) -> None:
    if not (Path("/proc/2/stat").exists() and "(kthreadd)" in Path("/proc/2/stat").read_text()):
        pytest.skip("needs kthreadd at pid 2 (the initial pid namespace)")
    host, fs = machine(tmp_path, version)
    root, child = sleepers
    fs.live_pids |= {2, root.pid, child.pid}

    def root_exits() -> None:  # between kdamon's check and the kernel's
        if root.poll() is None:
            root.kill()
            root.wait()
            fs.live_pids.discard(root.pid)

    fs.before_commit = root_exits
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = stream_until_added(host, root.pid, [root.pid, child.pid])
    assert [r for r in records if isinstance(r, TargetAdded)] == [TargetAdded(1, child.pid)]
    restarts = [str(w.message) for w in caught if issubclass(w.category, KdamonWarning)]
    if version == "6.12":  # the kdamond ended on the commit: started again, the exited root as kthreadd
        assert len(restarts) == 1 and "started again with its 2 targets in the same order" in restarts[0]
    else:  # the commit was refused, and made again without the exited root
        assert restarts == []
