"""Following forks on the host: real processes that fork children and grandchildren, both sources."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from connector_check import connector_or_skip
from kdamon.errors import KernelError
from kdamon.events import forks
from kdamon.events.forks import ForkFollower, process_start

WAIT_S = 30.0  # a safety net against hangs, never a measured bound

# Once its stdin is closed: start a thread (not a process), fork a child that forks a grandchild,
# print the two pids, and live until killed.
FAMILY = """
import os, sys, threading, time
sys.stdin.read()
threading.Thread(target=time.sleep, args=(600,), daemon=True).start()
read, write = os.pipe()
child = os.fork()
if child == 0:
    grandchild = os.fork()
    if grandchild == 0:
        time.sleep(600)
        os._exit(0)
    os.write(write, f"{os.getpid()} {grandchild}\\n".encode())
    time.sleep(600)
    os._exit(0)
print(os.read(read, 100).decode().strip(), flush=True)
time.sleep(600)
"""


@pytest.fixture
def family() -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([sys.executable, "-c", FAMILY], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    yield proc
    proc.kill()
    proc.wait()


def release(proc: subprocess.Popen[str]) -> tuple[int, int]:
    """Let ``proc`` fork; the child's and the grandchild's pids."""
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.close()
    child, grandchild = map(int, proc.stdout.readline().split())
    return child, grandchild


def kill_descendants(*pids: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_for(what: str, ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not ready():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.01)


@pytest.mark.parametrize("source", ["connector", "scan"])
def test_children_and_grandchildren_forked_later_are_followed(source: str, family: subprocess.Popen[str]) -> None:
    if source == "connector":
        connector_or_skip()
    with ForkFollower([family.pid], source=source, interval_s=0.05) as follower:  # type: ignore[arg-type]
        assert follower.source == source
        assert follower.pids() == (family.pid,)
        child, grandchild = release(family)
        try:
            wait_for("the grandchild", lambda: grandchild in follower.pids())
            assert follower.pids() == (family.pid, child, grandchild)  # the thread is no process
            assert (follower.parent(child), follower.parent(grandchild), follower.parent(family.pid)) == (
                family.pid,
                child,
                None,
            )
            assert follower.running() == sorted((family.pid, child, grandchild))
            kill_descendants(grandchild)
            wait_for("the grandchild's exit", lambda: grandchild not in follower.running())
            assert follower.pids() == (family.pid, child, grandchild)  # seen once, listed for good
        finally:
            kill_descendants(child, grandchild)


def test_descendants_running_at_the_start_are_found(family: subprocess.Popen[str]) -> None:
    child, grandchild = release(family)
    try:
        with ForkFollower([family.pid], source="scan", interval_s=60) as follower:
            assert follower.pids() == (family.pid, child, grandchild)
    finally:
        kill_descendants(child, grandchild)


def test_auto_scans_when_the_connector_cannot_be_had(
    monkeypatch: pytest.MonkeyPatch, family: subprocess.Popen[str]
) -> None:
    def refuse(self: object) -> None:
        raise OSError("no connector in this test")

    monkeypatch.setattr(forks.ConnectorThread, "start", refuse)
    with ForkFollower([family.pid], interval_s=0.05) as follower:
        assert (follower.source, follower.why_scan) == ("scan", "no connector in this test")
        child, grandchild = release(family)
        try:
            wait_for("the grandchild", lambda: grandchild in follower.pids())
        finally:
            kill_descendants(child, grandchild)
    with pytest.raises(KernelError, match="process connector.*scanning /proc works anywhere"):
        ForkFollower([family.pid], source="connector").start()


def test_a_process_is_told_from_a_later_one_with_its_pid() -> None:
    proc = subprocess.Popen(["sleep", "60"])
    start = process_start(proc.pid)
    assert start is not None and start == process_start(proc.pid)
    proc.kill()
    proc.wait()
    assert process_start(proc.pid) is None
