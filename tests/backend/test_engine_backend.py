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
from kdamon.backend.types import KdamondId
from kdamon.errors import EngineError
from kdamon.model import (
    AccessPattern,
    Context,
    Intervals,
    Kdamond,
    Scheme,
    SchemeStats,
    Target,
)

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
    assert all(s.target_idx == 0 and s.aggr_us == FAST.aggr_us and s.nr_regions for s in seen)
    assert [s.time_ns for s in seen] == sorted(s.time_ns for s in seen)


def test_published_stats_keep_unknown_counters_unknown() -> None:
    state = EngineState(pid=1, state="on", stats=(SchemeStats(3, 12288, None, None, None),
                                                  SchemeStats(3, 12288, 0, 0, 0, nr_snapshots=2)))
    assert EngineState.from_json(state.to_json()) == state
