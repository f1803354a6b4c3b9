"""Engine kdamonds: daemons found again by later processes through the state directory,
and in-process streaming for record."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from kdamon.backend.control import collect_status
from kdamon.backend.engine_backend import EngineBackend
from kdamon.backend.engine_store import EngineState
from kdamon.backend.host import Host, HostPaths
from kdamon.backend.process import pid_alive
from kdamon.backend.types import KdamondId, TargetAdded
from kdamon.errors import EngineError, EngineWarning
from kdamon.model import (
    AccessPattern,
    Context,
    Intervals,
    Kdamond,
    Scheme,
    SchemeStats,
    Target,
)
from kdamon.model.snapshot import Snapshot

FAST = Intervals(sample_us=2000, aggr_us=20000, update_us=1_000_000)


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; b = bytearray(1 << 22); time.sleep(120)"])
    yield proc
    proc.kill()
    proc.wait()


def _kdamond(pid: int, **context: object) -> Kdamond:
    return Kdamond(contexts=(Context(targets=(Target(pid=pid),), intervals=FAST, **context),))  # type: ignore[arg-type]


def test_daemon_start_status_tune_stop(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    host = Host(HostPaths.under(tmp_path))
    backend = EngineBackend(host)
    kdamond = _kdamond(sleeper.pid, schemes=(Scheme(access_pattern=AccessPattern()),))
    kid, pid = backend.start(kdamond)
    assert kid == KdamondId("engine", "0") and pid is not None and pid_alive(pid)

    [status] = EngineBackend(host).status()  # a fresh backend, as a later kdamon process
    assert (status.owner, status.running, status.pid) == ("kdamon", True, pid)
    assert status.kdamond == kdamond
    assert len(status.stats) == 1
    ops = backend.store.read_state(0).ops  # type: ignore[union-attr]
    assert ops.startswith("vaddr/") and f"operations {ops}" in status.note

    slower = attrs.evolve(kdamond.contexts[0], intervals=attrs.evolve(FAST, aggr_us=40000))
    backend.tune(kid, Kdamond(contexts=(slower,)))
    assert backend.configuration(kid).contexts[0].intervals.aggr_us == 40000
    state = backend.store.read_state(0)
    assert state is not None and state.generation == 1 and state.pid == pid

    backend.stop(kid)
    assert not pid_alive(pid)
    assert collect_status(host) == []


@pytest.mark.parametrize(
    "launched_as",
    [["-m", "kdamon.backend.engine_daemon"], ["-m", "kdamon", "_engine-daemon"]],
    ids=["module", "before-the-module"],
)
def test_status_stop_and_tune_know_daemons_by_their_command_line(tmp_path: Path, launched_as: list[str]) -> None:
    """A daemon started as the module, or by an earlier kdamon's hidden command, is found again;
    a process that took over the pid of a daemon is not taken for it."""
    host = Host(HostPaths.under(tmp_path))
    backend = EngineBackend(host)
    script = "import sys, time; time.sleep(120)"
    impostor = subprocess.Popen([sys.executable, "-c", script])
    daemon = subprocess.Popen([sys.executable, "-c", script, *launched_as, "DIRECTORY"])
    try:
        for proc in (impostor, daemon):
            index = backend.store.create(_kdamond(proc.pid))
            backend.store.write_state(index, EngineState(pid=proc.pid, state="on"))
        by_pid = {s.pid: s.running for s in backend.status()}
        assert by_pid == {None: False, daemon.pid: True}
        with pytest.raises(EngineError, match="engine:0 is not running"):
            backend.tune(KdamondId("engine", "0"), _kdamond(impostor.pid))
        backend.stop(KdamondId("engine", "1"))
        assert not pid_alive(daemon.pid) and impostor.poll() is None  # stop ended the daemon only
        backend.stop(KdamondId("engine", "0"))
        assert impostor.poll() is None and backend.store.indexes() == []
    finally:
        for proc in (impostor, daemon):
            proc.kill()
            proc.wait()


def test_daemon_reports_start_errors(tmp_path: Path) -> None:
    backend = EngineBackend(Host(HostPaths.under(tmp_path)))
    with pytest.raises(EngineError, match="could not start"):
        backend.start(_kdamond(2**22 + 12345))  # no such process
    assert backend.store.indexes() == []


def test_daemon_ends_when_target_exits(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    host = Host(HostPaths.under(tmp_path))
    backend = EngineBackend(host)
    kid, pid = backend.start(_kdamond(proc.pid))
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait()
    state = backend.store.wait_state(kid.index, lambda s: s.state == "off", 30.0)
    assert state is not None and "every target exited" in state.error
    [status] = backend.status()
    assert not status.running and "every target exited" in status.note
    backend.stop(kid)
    assert backend.store.indexes() == []


def test_stream_yields_snapshots_until_told(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    backend = EngineBackend(Host(HostPaths.under(tmp_path)))
    seen = []
    stream = backend.stream(_kdamond(sleeper.pid), lambda: len(seen) >= 3)
    for snapshot in stream:
        seen.append(snapshot)
    assert len(seen) >= 3
    assert all(s.target_idx == 0 and s.nr_regions for s in seen)
    # the intervals really used: the configured ones, or wider with the same samples per aggregation
    ratio = FAST.aggr_us // FAST.sample_us
    assert all(s.aggr_us >= FAST.aggr_us and s.aggr_us // s.sample_us == ratio for s in seen)
    assert [s.time_ns for s in seen] == sorted(s.time_ns for s in seen)


def test_stream_appends_the_processes_it_is_asked_for(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    backend = EngineBackend(Host(HostPaths.under(tmp_path)))
    other = subprocess.Popen([sys.executable, "-c", "import time; b = bytearray(1 << 22); time.sleep(120)"])
    gone = subprocess.Popen(["true"])
    gone.wait()
    wanted = [sleeper.pid]
    records: list[object] = []

    def enough() -> bool:
        if sum(isinstance(r, Snapshot) for r in records) >= 2:
            wanted[:] = [sleeper.pid, gone.pid, other.pid, sleeper.pid]  # one gone, one twice
        return sum(isinstance(r, Snapshot) and r.target_idx == 1 for r in records) >= 3

    try:
        for record in backend.stream(_kdamond(sleeper.pid), enough, lambda: wanted):
            records.append(record)
    finally:
        other.kill()
        other.wait()
    added = [r for r in records if isinstance(r, TargetAdded)]
    assert added == [TargetAdded(1, other.pid)]
    first = next(i for i, r in enumerate(records) if isinstance(r, Snapshot) and r.target_idx == 1)
    assert records.index(added[0]) < first
    assert {r.target_idx for r in records if isinstance(r, Snapshot)} == {0, 1}


def test_published_stats_keep_unknown_counters_unknown() -> None:
    state = EngineState(
        pid=1,
        state="on",
        stats=(SchemeStats(3, 12288, None, None, None), SchemeStats(3, 12288, 0, 0, 0, nr_snapshots=2)),
    )
    assert EngineState.from_json(state.to_json()) == state


# -- schemes the engine cannot apply, and the intervals it really uses ---------------------


def _hugepage(pid: int) -> Kdamond:
    return _kdamond(pid, schemes=(Scheme(action="pageout"), Scheme(action="hugepage")))


def test_start_tune_and_stream_refuse_what_the_engine_cannot_apply(tmp_path: Path) -> None:
    backend = EngineBackend(Host(HostPaths.under(tmp_path)))
    for attempt in (lambda: backend.start(_hugepage(1)), lambda: next(backend.stream(_hugepage(1), lambda: True))):
        with pytest.raises(EngineError) as raised:
            attempt()
        message = str(raised.value)
        assert "cannot apply hugepage (scheme 1) to vaddr targets" in message
        assert "applies only willneed, cold, pageout and collapse" in message
        assert "--backend auto or sysfs" in message and "--engine-stat-only" in message
    assert backend.store.indexes() == []  # nothing was started


def test_auto_says_why_it_chose_the_engine_when_refusing(tmp_path: Path) -> None:
    from kdamon.backend.choose import choose_backend
    from kdamon.backend.types import MonitorRequest

    host = Host(HostPaths.under(tmp_path))  # no DAMON at all
    backend, _ = choose_backend(MonitorRequest(_hugepage(1)), "auto", host=host)
    with pytest.raises(EngineError) as raised:
        backend.start(_hugepage(1))
    message = str(raised.value)
    assert message.startswith("--backend auto chose kdamon's engine because this kernel has no DAMON sysfs interface")
    assert "make kernel DAMON usable here" in message and "--engine-stat-only" in message
    allowed, _ = choose_backend(MonitorRequest(_hugepage(1), engine_stat_only=True), "auto", host=host)
    assert isinstance(allowed, EngineBackend) and allowed.stat_only


def test_stat_only_counts_and_says_so(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    host = Host(HostPaths.under(tmp_path))
    backend = EngineBackend(host, stat_only=True)
    with pytest.warns(EngineWarning, match=r"engine:0 only counts scheme 1 \(hugepage\), as stat schemes"):
        kid, _ = backend.start(_hugepage(sleeper.pid))
    try:
        state = backend.store.wait_state(0, lambda s: s.sample_us > 0, 30.0)
        assert state is not None and state.counted_only == (1,)
        [status] = EngineBackend(host).status()
        assert "scheme 1 only counted, as stat (--engine-stat-only" in status.note
        # tune needs the option again: the new configuration is checked as the first was
        with pytest.raises(EngineError, match="cannot apply lru_prio"):
            EngineBackend(host).tune(kid, _kdamond(sleeper.pid, schemes=(Scheme(action="lru_prio"),)))
        with pytest.warns(EngineWarning, match=r"engine:0 only counts scheme 0 \(lru_prio\)"):
            backend.tune(kid, _kdamond(sleeper.pid, schemes=(Scheme(action="lru_prio"),)))
    finally:
        backend.stop(kid)


def test_stream_with_stat_only_yields_the_counted_schemes_snapshots(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    backend = EngineBackend(Host(HostPaths.under(tmp_path)), stat_only=True)
    seen = []
    with pytest.warns(EngineWarning, match="the engine only counts scheme 1"):
        for snapshot in backend.stream(_hugepage(sleeper.pid), lambda: len(seen) >= 2):
            seen.append(snapshot)
    assert len(seen) >= 2


def test_the_daemon_publishes_the_intervals_it_uses(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    host = Host(HostPaths.under(tmp_path))
    backend = EngineBackend(host)
    kid, _ = backend.start(_kdamond(sleeper.pid))
    try:
        state = backend.store.wait_state(0, lambda s: s.sample_us > 0, 30.0)
        assert state is not None
        # the configured intervals, or wider with the same samples per aggregation
        assert state.sample_us >= FAST.sample_us and state.aggr_us // state.sample_us == 10
        assert state.widened == (state.sample_us > FAST.sample_us)
    finally:
        backend.stop(kid)


def test_status_notes_widened_intervals() -> None:
    state = EngineState(
        pid=1,
        state="on",
        ops="vaddr/smaps",
        counted_only=(0, 2),
        sample_us=66_000,
        aggr_us=1_320_000,
        busy_us=25_800,
        late_us=600,
        widened=True,
    )
    assert EngineState.from_json(state.to_json()) == state
    from kdamon.backend.engine_backend import _notes

    assert _notes(state) == [
        "operations vaddr/smaps",
        "intervals widened to sample 66ms, aggr 1.32s: the engine's access check and bookkeeping take "
        "25.8ms of a sample and its wake-ups come 600us late",
        "schemes 0, 2 only counted, as stat (--engine-stat-only: the engine cannot apply the action)",
    ]


def test_what_a_killed_start_left_is_shown_and_removed(tmp_path: Path) -> None:
    host = Host(HostPaths.under(tmp_path))
    backend = EngineBackend(host)
    left = backend.store.dir(0)
    left.mkdir(parents=True)  # killed after mkdir, in the middle of writing its configuration
    (left / ".tmp-4242-00aa00aa00aa-config.json").write_text('{"kdamonds": [')
    [status] = EngineBackend(host).status()
    assert (status.id, status.owner, status.running) == (KdamondId("engine", "0"), "kdamon", False)
    assert "configuration unreadable" in status.note
    EngineBackend(host).stop(status.id)
    assert backend.store.indexes() == []
