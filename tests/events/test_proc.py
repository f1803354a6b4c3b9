"""Process lifecycle events on the host: real child processes, both event sources."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from connector_check import connector_or_skip
from kdamon.errors import KernelError
from kdamon.events import proc
from kdamon.events.proc import ProcessEvent, ProcessWatcher

WAIT_S = 30.0  # a safety net against hangs, never a measured bound


def _child(script: str) -> subprocess.Popen[bytes]:
    """A Python child that runs ``script`` once its stdin is closed.

    It returns once the child runs Python code: ``Popen`` returns as soon as the exec closes
    its close-on-exec pipe, before the kernel reports the exec to the process connector, so
    a watch begun then could see the child's own start as an exec event.
    """
    child = subprocess.Popen(
        [sys.executable, "-c", f"import sys; print(flush=True); sys.stdin.read(); {script}"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert child.stdout is not None and child.stdout.readline() == b"\n"
    return child


def _release(child: subprocess.Popen[bytes]) -> None:
    assert child.stdin is not None
    child.stdin.close()


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[bytes]]]:
    made: list[subprocess.Popen[bytes]] = []
    yield made
    for child in made:
        if child.poll() is None:
            child.kill()
        child.wait()


@pytest.mark.parametrize("backend", ["pidfd", "connector"])
def test_exit_is_reported_with_its_code(backend: str, children: list[subprocess.Popen[bytes]]) -> None:
    if backend == "connector":
        connector_or_skip()
    child = _child("sys.exit(7)")
    children.append(child)
    with ProcessWatcher([child.pid], backend=backend) as watcher:  # type: ignore[arg-type]
        assert watcher.backend == backend
        assert watcher.alive(child.pid)
        _release(child)
        event = watcher.wait_exit(WAIT_S)
        assert event == ProcessEvent(child.pid, "exit", 7)
        assert not watcher.alive(child.pid)
        assert watcher.wait_all(0)
    assert child.wait() == 7  # the watcher did not reap it


@pytest.mark.parametrize("backend", ["pidfd", "connector"])
def test_a_killed_process_reports_minus_the_signal(backend: str, children: list[subprocess.Popen[bytes]]) -> None:
    if backend == "connector":
        connector_or_skip()
    child = _child("")
    children.append(child)
    with ProcessWatcher([child.pid], backend=backend) as watcher:  # type: ignore[arg-type]
        child.send_signal(signal.SIGKILL)
        assert watcher.wait_exit(WAIT_S) == ProcessEvent(child.pid, "exit", -signal.SIGKILL)


def test_connector_reports_exec_then_exit(children: list[subprocess.Popen[bytes]]) -> None:
    connector_or_skip()
    child = _child("import os; os.execv('/bin/sh', ['sh', '-c', 'exit 3'])")
    children.append(child)
    with ProcessWatcher([child.pid], backend="connector") as watcher:
        _release(child)
        events = list(watcher)
    assert events == [ProcessEvent(child.pid, "exec"), ProcessEvent(child.pid, "exit", 3)]


def test_a_process_gone_before_the_watch_is_reported_at_start(children: list[subprocess.Popen[bytes]]) -> None:
    child = _child("sys.exit(5)")
    children.append(child)
    _release(child)
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # a zombie now, not reaped
    with ProcessWatcher([child.pid], backend="pidfd") as watcher:
        assert not watcher.alive(child.pid)
        assert watcher.exited == {child.pid: 5}
        assert list(watcher) == [ProcessEvent(child.pid, "exit", 5)]


def test_iteration_ends_when_every_process_exited(children: list[subprocess.Popen[bytes]]) -> None:
    first, second = _child("sys.exit(1)"), _child("sys.exit(2)")
    children += [first, second]
    with ProcessWatcher([first.pid, second.pid], backend="pidfd") as watcher:
        _release(first)
        assert watcher.wait_exit(WAIT_S) == ProcessEvent(first.pid, "exit", 1)
        assert not watcher.wait_all(0)
        _release(second)
        assert list(watcher) == [ProcessEvent(second.pid, "exit", 2)]
    assert watcher.exited == {first.pid: 1, second.pid: 2}


def test_a_non_child_exit_has_no_code(children: list[subprocess.Popen[bytes]]) -> None:
    # sh starts a grandchild and exits: the grandchild is not ours to wait for.
    shell = subprocess.Popen(["sh", "-c", "sleep 60 & echo $!"], stdout=subprocess.PIPE, text=True)
    assert shell.stdout is not None
    grandchild = int(shell.stdout.readline())
    shell.wait()
    with ProcessWatcher([grandchild], backend="pidfd") as watcher:
        os.kill(grandchild, signal.SIGTERM)
        assert watcher.wait_exit(WAIT_S) == ProcessEvent(grandchild, "exit", None)


def test_stop_wakes_a_blocked_reader(children: list[subprocess.Popen[bytes]]) -> None:
    child = _child("")
    children.append(child)
    watcher = ProcessWatcher([child.pid], backend="pidfd").start()
    got: list[ProcessEvent | None] = [ProcessEvent(0, "exec")]
    reader = threading.Thread(target=lambda: got.__setitem__(0, watcher.next_event()))
    reader.start()
    watcher.stop()
    reader.join(WAIT_S)
    assert not reader.is_alive()
    assert got == [None]


def test_auto_falls_back_to_pidfd(monkeypatch: pytest.MonkeyPatch, children: list[subprocess.Popen[bytes]]) -> None:
    def refuse(self: object, pids: object, emit: object) -> None:
        raise OSError("Operation not permitted")

    monkeypatch.setattr(proc._ConnectorSource, "start", refuse)
    child = _child("")
    children.append(child)
    with ProcessWatcher([child.pid]) as watcher:
        assert watcher.backend == "pidfd"


def test_no_usable_source_says_what_is_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: object, pids: object, emit: object) -> None:
        raise OSError("Function not implemented")

    monkeypatch.setattr(proc._ConnectorSource, "start", refuse)
    monkeypatch.setattr(proc._PidfdSource, "start", refuse)
    with pytest.raises(KernelError, match="CONFIG_PROC_EVENTS"):
        ProcessWatcher([os.getpid()]).start()


def test_an_empty_watch_is_refused() -> None:
    with pytest.raises(KernelError, match="at least one pid"):
        ProcessWatcher([])


def test_connector_rechecks_after_a_failed_receive(
    monkeypatch: pytest.MonkeyPatch, children: list[subprocess.Popen[bytes]]
) -> None:
    connector_or_skip()
    import pyroute2

    child = _child("")
    children.append(child)
    real_get = pyroute2.ProcEventSocket.get
    calls: list[int] = []
    started = threading.Event()

    def overflowing_get(self: object, *args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 2:  # (1: the subscription's answer) the child's exit is lost in an overflow
            started.wait(WAIT_S)  # after start()'s own check of the pids
            child.kill()
            child.wait()
            while not any(
                m.get("event") == "PROC_EVENT_EXIT" and m.get("process_tgid") == child.pid
                for m in real_get(self, *args, **kwargs)
            ):
                pass  # swallow events up to the child's exit
            raise OSError(105, "No buffer space available")
        return real_get(self, *args, **kwargs)

    monkeypatch.setattr(pyroute2.ProcEventSocket, "get", overflowing_get)
    with ProcessWatcher([child.pid], backend="connector") as watcher:
        started.set()
        assert watcher.wait_exit(WAIT_S) == ProcessEvent(child.pid, "exit", None)  # reaped: no code
