"""Following the processes that given processes fork: children, grandchildren, ...

:class:`ForkFollower` knows the root processes and every descendant it has
seen, in the order it saw them, with each one's parent.  Two sources:

* ``connector``: fork events of the process connector
  (:mod:`kdamon.events.connector`; root, ``CONFIG_PROC_EVENTS``, the initial
  network namespace): a child is known as soon as it is forked.  Exit events
  retire a process from the parents followed (so that a reused pid is not
  taken for it), and after lost events ``/proc`` is scanned.
* ``scan``: ``/proc`` is scanned every ``interval_s`` for processes whose
  parent chain leads to a followed process.  A child that exits between two
  scans is missed, and so is one whose parent exited before the scan saw it
  (it has been re-parented).

``source="auto"`` uses the connector where it can be had and scans
otherwise.  Either way ``/proc`` is scanned once at the start, for the
descendants that already run.  A process counts as the one followed only
while its start time (``/proc/PID/stat`` field 22) is the one seen first,
and a descendant is added only if it still runs when it is seen: one that
exited at once is left out.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from kdamon.errors import KernelError
from kdamon.events.connector import ConnectorThread

__all__ = ["ForkFollower", "ForkSource", "process_start"]

ForkSource = Literal["auto", "connector", "scan"]


def _stat_fields(pid: int, proc_root: Path) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (state first); None if gone."""
    try:
        stat = (proc_root / str(pid) / "stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()


def process_start(pid: int, proc_root: Path = Path("/proc")) -> int | None:
    """When process ``pid`` started (clock ticks since boot); None if it is gone or a zombie.

    With the pid, the start time tells one process from a later one that reuses its pid.
    """
    fields = _stat_fields(pid, proc_root)
    if not fields or fields[0] in ("Z", "X") or len(fields) < 20:
        return None
    return int(fields[19])


def _processes(proc_root: Path) -> dict[int, tuple[int, int]]:
    """Every running process: pid -> (parent pid, start time)."""
    out = {}
    for name in os.listdir(proc_root):
        if name.isdigit():
            fields = _stat_fields(int(name), proc_root)
            if fields and fields[0] not in ("Z", "X") and len(fields) >= 20:
                out[int(name)] = (int(fields[1]), int(fields[19]))
    return out


class ForkFollower:
    """The processes ``roots`` and their descendants (use as a context manager, or start/stop).

    :meth:`pids` answers at once from what was seen so far; it is safe to
    call from any thread.
    """

    def __init__(
        self,
        roots: Iterable[int],
        *,
        source: ForkSource = "auto",
        interval_s: float = 1.0,
        proc_root: Path = Path("/proc"),
    ) -> None:
        self._roots = tuple(dict.fromkeys(roots))
        if not self._roots:
            raise KernelError("no process to follow: give at least one pid")
        self._requested = source
        self._interval_s = interval_s
        self._proc_root = proc_root
        self._lock = threading.Lock()
        self._order: list[int] = []
        self._parents: dict[int, int | None] = {}
        self._starts: dict[int, int] = {}  # the followed processes that still run: pid -> start time
        self._connector: ConnectorThread | None = None
        self._scanner: threading.Thread | None = None
        self._stop = threading.Event()
        self.source = ""
        """``connector`` or ``scan`` once started."""
        self.why_scan = ""
        """Why the connector could not be had, when ``source`` is ``scan`` for ``auto``."""
        for pid in self._roots:
            self._add(pid, None)

    # -- what was seen -----------------------------------------------------
    def pids(self) -> tuple[int, ...]:
        """The roots, then each descendant in the order it was seen (exited ones included)."""
        with self._lock:
            return tuple(self._order)

    def running(self) -> list[int]:
        """The followed processes that still run (checked in ``/proc`` now)."""
        with self._lock:
            starts = dict(self._starts)
        gone = [pid for pid, start in starts.items() if process_start(pid, self._proc_root) != start]
        with self._lock:
            for pid in gone:
                if self._starts.get(pid) == starts[pid]:
                    del self._starts[pid]
        return sorted(set(starts) - set(gone))

    def parent(self, pid: int) -> int | None:
        """The parent of descendant ``pid`` (None for a root or an unknown pid)."""
        with self._lock:
            return self._parents.get(pid)

    def _add(self, pid: int, parent: int | None) -> bool:
        """Follow ``pid`` if it runs and is new (called with the lock held, or before start)."""
        if pid in self._parents:
            return False
        start = process_start(pid, self._proc_root)
        if start is None and parent is not None:
            return False  # exited before it was seen
        self._order.append(pid)
        self._parents[pid] = parent
        if start is not None:
            self._starts[pid] = start
        return True

    # -- life cycle ----------------------------------------------------------
    def start(self) -> ForkFollower:
        """Subscribe to fork events, or begin scanning; KernelError if ``connector`` was
        asked for and cannot be had."""
        if self.source:
            return self
        if self._requested in ("auto", "connector"):
            connector = ConnectorThread(self._on_message, self.scan, name="kdamon-fork-connector")
            try:
                connector.start()
            except OSError as exc:
                connector.stop()
                if self._requested == "connector":
                    raise KernelError(
                        f"cannot follow forks through the process connector: {exc}. It "
                        "needs root, CONFIG_PROC_EVENTS and the initial network namespace; "
                        "scanning /proc works anywhere"
                    ) from exc
                self.why_scan = str(exc)
            else:
                self._connector = connector
                self.source = "connector"
        self.scan()  # what runs already (and was forked before the subscription)
        if self._connector is None:
            self.source = "scan"
            self._scanner = threading.Thread(target=self._scan_loop, name="kdamon-fork-scan", daemon=True)
            self._scanner.start()
        return self

    def stop(self) -> None:
        """Stop following (idempotent)."""
        self._stop.set()
        if self._connector is not None:
            self._connector.stop()
            self._connector = None
        if self._scanner is not None:
            self._scanner.join()
            self._scanner = None

    def __enter__(self) -> ForkFollower:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- sources ---------------------------------------------------------------
    def scan(self) -> None:
        """Look in ``/proc`` for descendants not seen yet."""
        processes = _processes(self._proc_root)
        children: dict[int, list[int]] = {}
        for pid, (ppid, _start) in processes.items():
            children.setdefault(ppid, []).append(pid)
        with self._lock:
            for pid, start in list(self._starts.items()):
                if processes.get(pid, (0, None))[1] != start:
                    del self._starts[pid]  # exited (its pid may have been reused)
            todo = sorted(self._starts)
            while todo:
                parent = todo.pop(0)
                for child in sorted(children.get(parent, ())):
                    if self._add(child, parent):
                        todo.append(child)

    def _scan_loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.scan()

    def _on_message(self, msg: Any) -> None:
        what = msg.get("event")
        if what == "PROC_EVENT_FORK":
            child = msg.get("child_tgid")
            if msg.get("child_pid") != child:
                return  # a new thread, not a new process
            parent = msg.get("parent_tgid")
            with self._lock:
                if parent in self._starts:
                    self._add(child, parent)
        elif what == "PROC_EVENT_EXIT" and msg.get("process_pid") == msg.get("process_tgid"):
            with self._lock:
                self._starts.pop(msg.get("process_tgid"), None)
