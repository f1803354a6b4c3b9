"""Process lifecycle events: a target's exit (and exec) as it happens.

Two sources, one interface (:class:`ProcessWatcher`):

* ``connector``: the kernel's process connector (``CONFIG_PROC_EVENTS``)
  through pyroute2.  Gives exit and exec events; needs root, and the initial
  network namespace (the connector socket exists only there).  pyroute2
  keeps its own buffer, so the receiving thread blocks in ``get()`` (a
  ``select()`` on the socket followed by ``get()`` loses events) and is
  ended by cancelling the socket's event loop from the outside.  When a
  receive fails (the kernel drops events when the socket buffer overflows),
  the watched processes are checked in ``/proc`` so that no exit is missed.
* ``pidfd``: ``pidfd_open(2)`` and ``poll(2)`` (Linux 5.3+).  Exit events
  only; works unprivileged and in any namespace.

``backend="auto"`` tries the connector and falls back to pidfds.  A process
counts as exited when it becomes a zombie: it has no memory left to monitor.
The connector reports a process's exit when its main thread exits (a main
thread that leaves with ``pthread_exit`` while others run is reported early).

Exit codes follow ``subprocess.Popen.returncode``: the status passed to
``exit()``, or minus the signal that killed it; None when it is unknown (a
pidfd watcher can read it only for the caller's own children, without
reaping them; a process that was gone before watching started).
"""

from __future__ import annotations

import os
import queue
import select
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Literal, Protocol

import attrs

from kdamon.errors import KernelError
from kdamon.events.connector import ConnectorThread

__all__ = ["Backend", "ProcessEvent", "ProcessWatcher", "exit_code_of", "has_exited"]

EventKind = Literal["exit", "exec"]
Backend = Literal["auto", "connector", "pidfd"]
Emit = Callable[["ProcessEvent"], None]


@attrs.frozen
class ProcessEvent:
    """A watched process exited or exec'ed."""

    pid: int
    kind: EventKind
    exit_code: int | None = None


def has_exited(pid: int, proc_root: Path = Path("/proc")) -> bool:
    """True when ``pid`` no longer runs: missing, or a zombie waiting to be reaped."""
    try:
        stat = (proc_root / str(pid) / "stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] in (["Z"], ["X"])


def exit_code_of(pid: int) -> int | None:
    """The exit code of the caller's exited child ``pid`` without reaping it; else None."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except (ChildProcessError, OSError):
        return None
    return _code_from_waitid(info)


def _code_from_waitid(info: os.waitid_result | None) -> int | None:
    if info is None:
        return None
    if info.si_code == os.CLD_EXITED:
        return info.si_status
    return -info.si_status


class _Source(Protocol):
    name: str

    def start(self, pids: frozenset[int], emit: Emit) -> None:
        """Begin watching; raise OSError when this source cannot work here."""

    def stop(self) -> None:
        """End watching and release every resource (idempotent)."""


class _ConnectorSource:
    """Exit and exec events from the process connector (:mod:`kdamon.events.connector`)."""

    name = "connector"

    def __init__(self) -> None:
        self._thread: ConnectorThread | None = None

    def start(self, pids: frozenset[int], emit: Emit) -> None:
        def on_message(msg: Any) -> None:
            event = _connector_event(msg, pids)
            if event is not None:
                emit(event)

        self._thread = ConnectorThread(on_message, lambda: _recheck(pids, emit))
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.stop()
            self._thread = None


def _recheck(pids: frozenset[int], emit: Emit) -> None:
    """After lost events: report the watched processes that are gone."""
    for pid in sorted(pids):
        if has_exited(pid):
            emit(ProcessEvent(pid, "exit", exit_code_of(pid)))


def _connector_event(msg: Any, pids: frozenset[int]) -> ProcessEvent | None:
    what = msg.get("event")
    tgid = msg.get("process_tgid")
    if tgid not in pids:
        return None
    if what == "PROC_EVENT_EXEC":
        return ProcessEvent(tgid, "exec")
    if what == "PROC_EVENT_EXIT" and msg.get("process_pid") == tgid:
        return ProcessEvent(tgid, "exit", os.waitstatus_to_exitcode(msg.get("exit_code")))
    return None


class _PidfdSource:
    """Exit events from pidfds: a pidfd becomes readable when its process exits."""

    name = "pidfd"

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = -1, -1

    def start(self, pids: frozenset[int], emit: Emit) -> None:
        fds: dict[int, int] = {}
        try:
            for pid in pids:
                try:
                    fds[os.pidfd_open(pid)] = pid
                except ProcessLookupError:
                    continue  # already gone: the watcher's first check reports it
        except OSError:
            for fd in fds:
                os.close(fd)
            raise
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC)
        self._thread = threading.Thread(target=self._main, args=(fds, emit), name="kdamon-proc-pidfd", daemon=True)
        self._thread.start()

    def _main(self, fds: dict[int, int], emit: Emit) -> None:
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        for fd in fds:
            poller.register(fd, select.POLLIN)
        try:
            while fds:
                for fd, _mask in poller.poll():
                    if fd == self._wake_r:
                        return
                    pid = fds.pop(fd)
                    poller.unregister(fd)
                    emit(ProcessEvent(pid, "exit", _pidfd_exit_code(fd)))
                    os.close(fd)
        finally:
            for fd in fds:
                os.close(fd)

    def stop(self) -> None:
        if self._thread is not None:
            os.write(self._wake_w, b"x")
            self._thread.join()
            self._thread = None
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._wake_r, self._wake_w = -1, -1


def _pidfd_exit_code(fd: int) -> int | None:
    try:
        info = os.waitid(os.P_PIDFD, fd, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except (ChildProcessError, OSError):
        return None  # not the caller's child: the status is its parent's to read
    return _code_from_waitid(info)


class ProcessWatcher:
    """Watches processes ``pids`` for exit (and, through the connector, exec).

    Use as a context manager, or ``start()`` / ``stop()``.  Events arrive in
    a queue read by :meth:`next_event`, :meth:`wait_exit`, :meth:`wait_all`
    or iteration; :meth:`alive` answers at once from the events seen so far.
    A process that had exited before the watch began is reported as an exit
    right after ``start()``.
    """

    def __init__(self, pids: Iterable[int], *, backend: Backend = "auto", proc_root: Path = Path("/proc")) -> None:
        self.pids = frozenset(pids)
        if not self.pids:
            raise KernelError("no process to watch: give at least one pid")
        self._requested = backend
        self._proc_root = proc_root
        self._events: queue.Queue[ProcessEvent | None] = queue.Queue()  # None: stopped
        self._lock = threading.Lock()
        self._exited: dict[int, int | None] = {}
        self._source: _Source | None = None
        self._all_exited = threading.Event()

    # -- lifecycle --------------------------------------------------------
    def start(self) -> ProcessWatcher:
        """Subscribe to the events; raises KernelError if no source works here."""
        if self._source is not None:
            return self
        errors = []
        for source in self._candidates():
            try:
                source.start(self.pids, self._emit)
            except OSError as exc:
                source.stop()
                errors.append(f"{source.name}: {exc}")
                continue
            self._source = source
            break
        else:
            raise KernelError(
                "cannot watch processes: " + "; ".join(errors) + ". The process connector "
                "needs root and CONFIG_PROC_EVENTS; pidfds need Linux 5.3+"
            )
        for pid in sorted(self.pids):  # those gone before the subscription
            if has_exited(pid, self._proc_root):
                self._emit(ProcessEvent(pid, "exit", exit_code_of(pid)))
        return self

    def _candidates(self) -> list[_Source]:
        if self._requested == "connector":
            return [_ConnectorSource()]
        if self._requested == "pidfd":
            return [_PidfdSource()]
        return [_ConnectorSource(), _PidfdSource()]

    def stop(self) -> None:
        """Unsubscribe and end the receiving thread."""
        if self._source is not None:
            self._source.stop()
            self._source = None
            self._events.put(None)  # wakes a reader blocked in next_event()

    def __enter__(self) -> ProcessWatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def backend(self) -> str:
        """``connector`` or ``pidfd`` once started."""
        if self._source is None:
            raise KernelError("the watcher has not started: call start() or use it in a with block")
        return self._source.name

    # -- events -----------------------------------------------------------
    def _emit(self, event: ProcessEvent) -> None:
        with self._lock:
            if event.pid in self._exited:
                return  # exit seen already (first check and source can both see it)
            if event.kind == "exit":
                self._exited[event.pid] = event.exit_code
            self._events.put(event)  # before _all_exited: iteration drains the queue last
            done = len(self._exited) == len(self.pids)
        if done:
            self._all_exited.set()

    def alive(self, pid: int) -> bool:
        """False once ``pid``'s exit was seen (True for pids that are not watched)."""
        with self._lock:
            return pid not in self._exited

    @property
    def exited(self) -> dict[int, int | None]:
        """Exit codes of the processes seen exiting so far."""
        with self._lock:
            return dict(self._exited)

    def next_event(self, timeout: float | None = None) -> ProcessEvent | None:
        """The next event, waiting up to ``timeout`` seconds (None: no limit).

        None on timeout, or once the watcher was stopped.
        """
        try:
            return self._events.get(timeout=timeout)
        except queue.Empty:
            return None

    def wait_exit(self, timeout: float | None = None) -> ProcessEvent | None:
        """The next exit event (exec events are passed over); None on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            event = self.next_event(left)
            if event is None or event.kind == "exit":
                return event

    def wait_all(self, timeout: float | None = None) -> bool:
        """Wait until every watched process exited; False on timeout."""
        return self._all_exited.wait(timeout)

    def __iter__(self) -> Iterator[ProcessEvent]:
        """Events until every watched process has exited or the watcher stops."""
        while True:
            with self._lock:  # _exited changes before its event is queued
                if len(self._exited) == len(self.pids) and self._events.empty():
                    return
            event = self.next_event()
            if event is None:
                return
            yield event
