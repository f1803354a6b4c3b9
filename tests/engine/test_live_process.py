"""Monitoring a real child process on this host (smaps and uffd + PAGEMAP_SCAN checks),
and switching to a better check once the process allows it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import kdamon
from kdamon.engine.core import Callbacks, Monitor
from kdamon.engine.ops import vaddr
from kdamon.engine.ops.checks import CheckKind, process_problem
from kdamon.engine.ops.pagemap import pagemap_scan_supported
from kdamon.engine.ops.probe import probe
from kdamon.engine.ops.registry import ops_for_context
from kdamon.engine.ops.vaddr import VaddrOps
from kdamon.errors import EngineError, EngineWarning
from kdamon.events.proc import has_exited
from kdamon.model.config import AccessPattern, Context, Intervals, Scheme, Target
from kdamon.model.snapshot import Snapshot
from kdamon.testing.uffd import AsyncWriteProtect
from kdamon.testing.workloads import Layout

Workload = tuple[subprocess.Popen[bytes], Layout]

INTERVALS = Intervals(sample_us=5000, aggr_us=100_000, update_us=1_000_000)


def uffd_available() -> bool:
    try:
        AsyncWriteProtect().close()
    except EngineError:
        return False
    return pagemap_scan_supported()


needs_uffd = pytest.mark.skipif(
    not uffd_available(), reason="needs userfaultfd async write-protect and PAGEMAP_SCAN (Linux 6.7+)"
)


def workload_command(layout_file: Path, *, uffd: bool, seconds: float = 60.0) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "kdamon.testing.workloads",
        "hot_cold",
        "--sizes",
        "8MiB",
        "64MiB",
        "--seconds",
        str(seconds),
        "--layout",
        str(layout_file),
    ]
    return [*command, "--uffd"] if uffd else command


def spawn(command: list[str]) -> subprocess.Popen[bytes]:
    package_root = str(Path(kdamon.__file__).resolve().parents[1])
    return subprocess.Popen(command, env={**os.environ, "PYTHONPATH": package_root})


def start_workload(tmp_path: Path, *, uffd: bool, seconds: float = 60.0) -> tuple[subprocess.Popen[bytes], Layout]:
    layout_file = tmp_path / "layout.json"
    process = spawn(workload_command(layout_file, uffd=uffd, seconds=seconds))
    while not layout_file.exists():
        if process.poll() is not None:
            raise AssertionError(f"the workload exited with {process.returncode}")
        time.sleep(0.02)
    return process, Layout.from_json(layout_file.read_text())


@pytest.fixture
def plain_workload(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Layout]]:
    process, layout = start_workload(tmp_path, uffd=False)
    yield process, layout
    process.kill()
    process.wait()


@pytest.fixture
def uffd_workload(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Layout]]:
    process, layout = start_workload(tmp_path, uffd=True)
    yield process, layout
    process.kill()
    process.wait()


def cpu_time_ns(pid: int) -> int:
    """How long ``pid``'s main thread has run on a CPU (``/proc/PID/schedstat``)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])


class AfterTheProcessRan:
    """An access check whose ``check`` waits until its process has run for 1 ms of CPU time
    since ``prepare`` (or has exited).  Between the two a monitor sleeps one sampling interval
    (a monitor on a virtual clock not at all), but on a loaded machine (measured: load 7 on 2
    CPUs) the workload often does not run meanwhile: 27% of back-to-back smaps samples, and
    aggregations that saw the hot area 8 times of 20, saw nothing of an area it writes all the
    time.  The tests are about what the checks see when there is something to see."""

    def __init__(self, inner: Any, pid: int) -> None:
        self.inner, self.pid = inner, pid
        self.kind, self.description = inner.kind, inner.description
        self._ran_since = 0

    def prepare(self, addrs: object) -> None:
        self.inner.prepare(addrs)
        self._ran_since = cpu_time_ns(self.pid)

    def check(self, addrs: object) -> object:
        deadline = time.monotonic() + 60  # a safety net against a workload that never runs
        while not has_exited(self.pid) and cpu_time_ns(self.pid) < self._ran_since + 1_000_000:
            assert time.monotonic() < deadline, f"process {self.pid} did not run for 60 s"
            time.sleep(0.0005)
        return self.inner.check(addrs)

    def lost(self) -> str | None:
        return self.inner.lost()  # type: ignore[no-any-return]

    def close(self) -> None:
        self.inner.close()


@pytest.fixture(autouse=True)
def the_process_runs_between_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every access check the vaddr operations open here waits for its process (above)."""
    open_check = vaddr.open_check
    monkeypatch.setattr(
        vaddr, "open_check", lambda kind, pid, *rest: AfterTheProcessRan(open_check(kind, pid, *rest), pid)
    )


def covers(snapshot: Snapshot, lo: int, hi: int) -> bool:
    """Whether the snapshot's regions cover ``[lo, hi)``."""
    return sum(max(0, min(r.end, hi) - max(r.start, lo)) for r in snapshot.states()) == hi - lo


def mean_accesses(snapshot: Snapshot, lo: int, hi: int) -> float:
    assert covers(snapshot, lo, hi), "the monitored regions must cover the area"
    weighted = sum(max(0, min(r.end, hi) - max(r.start, lo)) * r.nr_accesses for r in snapshot.states())
    return weighted / (hi - lo)


def monitor_live(
    pid: int,
    kind: CheckKind,
    aggregations: int,
    schemes: tuple[Scheme, ...] = (),
    until: Callable[[Monitor, list[Snapshot]], bool] | None = None,
) -> tuple[Monitor, list[Snapshot]]:
    """Monitor until ``aggregations`` aggregations are done, or ``until`` holds before, or the process exits."""
    context = Context(targets=(Target(pid=pid),), intervals=INTERVALS, schemes=schemes)
    snapshots: list[Snapshot] = []

    def after_aggregation(monitor: Monitor) -> bool:
        snapshots.extend(monitor.snapshots())
        return len(snapshots) >= aggregations or (until is not None and until(monitor, snapshots))

    monitor = Monitor(context, VaddrOps([kind]), seed=7, callbacks=Callbacks(after_aggregation=after_aggregation))
    monitor.run(duration_us=300_000_000)  # a safety net only
    return monitor, snapshots


def hot_missed(snapshots: list[Snapshot], layout: Layout) -> str | None:
    """Why the last three snapshots do not show the hot area hot and the cold one cold; None if they do."""
    if len(snapshots) < 3:
        return f"only {len(snapshots)} snapshots"
    for snapshot in snapshots[-3:]:
        hot = mean_accesses(snapshot, layout.hot[0], layout.hot[1])
        cold = mean_accesses(snapshot, layout.cold[0], layout.cold[1])
        if hot < 0.5 * snapshot.max_nr_accesses:
            return f"hot area seen {hot:.1f} times of {snapshot.max_nr_accesses}"
        if cold > 0.2 * hot:
            return f"cold area seen {cold:.1f} times, hot {hot:.1f}"
    return None


def assert_hot_found_lately(snapshots: list[Snapshot], layout: Layout) -> None:
    missed = hot_missed(snapshots, layout)
    assert missed is None, missed


def monitor_until_hot_found(pid: int, kind: CheckKind, layout: Layout) -> tuple[Monitor, list[Snapshot]]:
    """Monitor until three aggregations in a row show the hot area hot (at least 12 aggregations,
    at most 120: on a loaded machine the regions take longer to adapt to the areas)."""
    return monitor_live(
        pid, kind, aggregations=120, until=lambda _, snaps: len(snaps) >= 12 and hot_missed(snaps, layout) is None
    )


def test_smaps_referenced_finds_the_hot_area(plain_workload: tuple[subprocess.Popen[bytes], Layout]) -> None:
    process, layout = plain_workload
    monitor, snapshots = monitor_until_hot_found(process.pid, "smaps", layout)
    assert "per mapping" in monitor.ops.capabilities and "reclaim" in monitor.ops.capabilities
    assert_hot_found_lately(snapshots, layout)


@needs_uffd
def test_uffd_pagemap_scan_finds_the_hot_area(uffd_workload: tuple[subprocess.Popen[bytes], Layout]) -> None:
    process, layout = uffd_workload
    monitor, snapshots = monitor_until_hot_found(process.pid, "uffd", layout)
    assert "writes only" in monitor.ops.capabilities
    assert_hot_found_lately(snapshots, layout)


@needs_uffd
def test_probe_prefers_uffd_for_a_cooperating_process(
    uffd_workload: tuple[subprocess.Popen[bytes], Layout], plain_workload: tuple[subprocess.Popen[bytes], Layout]
) -> None:
    cooperating = probe(uffd_workload[0].pid)
    plain = probe(plain_workload[0].pid)
    if cooperating.kind == "page_idle":
        pytest.skip("idle page tracking is available here and beats uffd")
    assert cooperating.kind == "uffd"
    assert plain.kind in ("soft_dirty", "smaps")
    assert any(kind == "uffd" and "userfaultfd" in why for kind, why in plain.rejected)
    assert (plain.awaited, cooperating.awaited) == (("uffd",), ())
    assert str(plain_workload[0].pid) in plain.explain()
    assert "asked again at each update" in plain.explain()
    ops = ops_for_context(Context(targets=(Target(pid=uffd_workload[0].pid), Target(pid=plain_workload[0].pid))))
    assert ops.name == f"vaddr/{plain.kind}+uffd"


@pytest.mark.skipif(os.geteuid() != 0, reason="process_madvise(MADV_COLD) on another process needs root here")
def test_cold_action_is_applied_to_the_child(plain_workload: tuple[subprocess.Popen[bytes], Layout]) -> None:
    process, layout = plain_workload
    scheme = Scheme(action="cold", access_pattern=AccessPattern(nr_accesses_max=0, age_min=3))
    # Each time the engine widens its intervals on a loaded machine, the regions' ages shrink in
    # proportion: monitor until the scheme applies (at most 120 aggregations), not a fixed 12.
    monitor, _ = monitor_live(
        process.pid,
        "smaps",
        aggregations=120,
        schemes=(scheme,),
        until=lambda monitor, _: monitor.scheme_stats()[0].nr_applied > 0,
    )
    stats = monitor.scheme_stats()[0]
    assert stats.nr_applied > 0 and stats.sz_applied > 0
    assert stats.nr_tried >= stats.nr_applied


def test_monitor_stops_when_the_process_exits(tmp_path: Path) -> None:
    process, _ = start_workload(tmp_path, uffd=False, seconds=1.0)
    try:
        monitor, _ = monitor_live(process.pid, "smaps", aggregations=10**6)
        assert not monitor.ops.target_valid(monitor.ctx.targets[0])
        assert process.poll() is not None
    finally:
        process.kill()
        process.wait()


def test_missing_process_is_reported() -> None:
    with pytest.raises(EngineError, match="does not exist"):
        probe(2**22 + 12345)


def count_process_problems(monkeypatch: pytest.MonkeyPatch, ops: VaddrOps) -> list[CheckKind]:
    """Patch the vaddr operations' re-probe; each call logs the kind in use then."""
    in_use: list[CheckKind] = []

    def counted(kind: CheckKind, pid: int, proc_root: Path) -> str | None:
        in_use.append(ops.kinds[0])
        return process_problem(kind, pid, proc_root)

    monkeypatch.setattr(vaddr, "process_problem", counted)
    return in_use


@needs_uffd
def test_switches_to_uffd_once_a_late_process_registers_its_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As ``kdamon record -- CMD``: monitoring starts before the command maps anything."""
    layout_file = tmp_path / "layout.json"
    command = workload_command(layout_file, uffd=True)
    process = spawn(["sh", "-c", 'sleep 1; exec "$@"', "sh", *command])
    try:
        context = Context(
            targets=(Target(pid=process.pid),), intervals=Intervals(sample_us=5000, aggr_us=100_000, update_us=200_000)
        )
        ops = ops_for_context(context)
        assert isinstance(ops, VaddrOps)
        if ops.kinds == ("page_idle",):
            pytest.skip("idle page tracking is available here and beats uffd")
        assert ops.kinds in (("soft_dirty",), ("smaps",))
        asked_on = count_process_problems(monkeypatch, ops)
        seen: list[tuple[CheckKind, Snapshot]] = []

        def after_aggregation(monitor: Monitor) -> bool:
            seen.extend((ops.kinds[0], snapshot) for snapshot in monitor.snapshots())
            return sum(kind == "uffd" for kind, _ in seen) >= 12

        Monitor(context, ops, seed=7, callbacks=Callbacks(after_aggregation=after_aggregation)).run(
            duration_us=30_000_000
        )  # a safety net only
        assert process.poll() is None, "the workload must outlive the monitoring"
    finally:
        process.kill()
        process.wait()
    kinds = [kind for kind, _ in seen]
    assert "uffd" in kinds, f"never switched from {kinds[0]}; asked {len(asked_on)} times"
    switched = kinds.index("uffd")
    assert switched > 0 and kinds[:switched] == [kinds[0]] * switched
    assert kinds[switched:] == ["uffd"] * 12
    assert ops.name == "vaddr/uffd" and "writes only" in ops.capabilities
    assert asked_on and "uffd" not in asked_on, "a target on uffd must not be asked again"
    assert_hot_found_lately([snapshot for _, snapshot in seen], Layout.from_json(layout_file.read_text()))


@needs_uffd
def test_a_target_on_its_best_check_is_not_probed_again(
    uffd_workload: Workload, monkeypatch: pytest.MonkeyPatch
) -> None:
    process, _ = uffd_workload
    context = Context(
        targets=(Target(pid=process.pid),), intervals=Intervals(sample_us=5000, aggr_us=50_000, update_us=50_000)
    )
    ops = ops_for_context(context)
    assert isinstance(ops, VaddrOps) and ops.kinds in (("uffd",), ("page_idle",))
    asked_on = count_process_problems(monkeypatch, ops)
    updates: list[int] = []
    update = VaddrOps.update
    monkeypatch.setattr(VaddrOps, "update", lambda self, ctx: updates.append(1) or update(self, ctx))
    enough = Callbacks(after_aggregation=lambda monitor: len(updates) >= 5)
    Monitor(context, ops, seed=7, callbacks=enough).run(duration_us=30_000_000)  # a safety net
    assert len(updates) >= 5
    assert asked_on == []


def test_a_process_that_execs_is_probed_again(tmp_path: Path) -> None:
    """A check bound to the old address space would read every sample as "not accessed"."""
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    uffd = uffd_available()
    code = (
        "import os, sys; from kdamon.testing.workloads import main; "
        f"main({workload_command(first, uffd=uffd, seconds=1.0)[3:]!r}); "
        f"os.execv(sys.executable, {workload_command(second, uffd=False)!r})"
    )
    process = spawn([sys.executable, "-c", code])
    try:
        while not first.exists():
            assert process.poll() is None, f"the workload exited with {process.returncode}"
            time.sleep(0.02)
        context = Context(
            targets=(Target(pid=process.pid),), intervals=Intervals(sample_us=5000, aggr_us=100_000, update_us=200_000)
        )
        ops = ops_for_context(context)
        assert isinstance(ops, VaddrOps)
        seen: list[tuple[CheckKind, Snapshot]] = []

        def after_aggregation(monitor: Monitor) -> bool:
            # Count from the first aggregation whose regions cover the new hot area: from there
            # the regions adapt to it (splits) in a few aggregations, however long the exec and
            # the new process's start took (on a loaded machine, several aggregations more).
            if second.exists():
                layout = Layout.from_json(second.read_text())
                [snapshot] = monitor.snapshots()
                if seen or covers(snapshot, layout.hot[0], layout.hot[1]):
                    seen.append((ops.kinds[0], snapshot))
                    # at least 12, and until three in a row show the hot area (a loaded machine adapts later)
                    return len(seen) >= 120 or (len(seen) >= 12 and hot_missed([s for _, s in seen], layout) is None)
            return False

        first_kind = ops.kinds[0]
        Monitor(context, ops, seed=7, callbacks=Callbacks(after_aggregation=after_aggregation)).run(
            duration_us=120_000_000
        )  # a safety net only
        assert process.poll() is None, "the workload must outlive the monitoring"
        assert ops.kinds == (probe(process.pid).kind,)
    finally:
        process.kill()
        process.wait()
    if uffd:
        assert first_kind in ("uffd", "page_idle") and ops.kinds[0] != "uffd"
    assert_hot_found_lately([snapshot for _, snapshot in seen], Layout.from_json(second.read_text()))


class FailingCheck:
    """A ``uffd`` check that fails in ``prepare`` or ``check``."""

    kind: CheckKind = "uffd"
    description = "fails"

    def __init__(self, failing: str) -> None:
        self.failing = failing
        self.calls: list[str] = []

    def prepare(self, addrs: object) -> None:
        self.calls.append("prepare")
        if self.failing == "prepare":
            raise EngineError("prepare failed")

    def check(self, addrs: object) -> object:
        self.calls.append("check")
        raise EngineError("check failed")

    def lost(self) -> str | None:
        return None

    def close(self) -> None:
        self.calls.append("close")


@pytest.mark.parametrize("failing", ["prepare", "check"])
def test_falls_back_when_the_switched_to_check_fails(
    plain_workload: Workload, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    process, layout = plain_workload
    asked: list[CheckKind] = []
    monkeypatch.setattr(vaddr, "process_problem", lambda kind, pid, proc_root: asked.append(kind))  # "allowed"
    failing_check = FailingCheck(failing)
    open_check = vaddr.open_check
    monkeypatch.setattr(
        vaddr, "open_check", lambda kind, *args: failing_check if kind == "uffd" else open_check(kind, *args)
    )
    ops = VaddrOps(["smaps"], awaited=[("smaps", "uffd")])  # smaps is no better: left out
    context = Context(
        targets=(Target(pid=process.pid),), intervals=Intervals(sample_us=5000, aggr_us=100_000, update_us=100_000)
    )
    monitor = Monitor(context, ops, seed=7)
    monitor.run_virtual(1_000_000)
    assert asked == ["uffd"], "the failed kind must not be awaited any more"
    assert failing_check.calls[-1] == "close" and failing in failing_check.calls
    assert ops.kinds == ("smaps",) and ops.name == "vaddr/smaps"
    assert mean_accesses(monitor.last_snapshots[0], layout.hot[0], layout.hot[1]) > 0


def test_a_failing_check_without_a_switch_still_stops_the_monitor(
    plain_workload: Workload, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vaddr, "open_check", lambda *args: FailingCheck("prepare"))
    context = Context(targets=(Target(pid=plain_workload[0].pid),), intervals=INTERVALS)
    with pytest.raises(EngineError, match="prepare failed"):
        Monitor(context, VaddrOps(["uffd"]), seed=7).run_virtual(100_000)


def test_smaps_says_once_a_process_that_it_sees_mappings_not_pages(plain_workload: Workload) -> None:
    process, _ = plain_workload
    context = Context(
        targets=(Target(pid=process.pid),), intervals=Intervals(sample_us=5000, aggr_us=100_000, update_us=100_000)
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Monitor(context, VaddrOps(["smaps"]), seed=7).run_virtual(500_000)  # five updates
    told = [
        w for w in caught if issubclass(w.category, EngineWarning) and "smaps, which sees mappings" in str(w.message)
    ]
    assert len(told) == 1 and f"process {process.pid} " in str(told[0].message)
