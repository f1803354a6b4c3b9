"""The engine daemon: runs one engine kdamond in the background.

:class:`~kdamon.backend.engine_backend.EngineBackend` starts it as
``python -m kdamon.backend.engine_daemon DIRECTORY --ready-fd N`` (see
:func:`main`); ``status``, ``stop`` and ``tune`` recognise it by that module
name in its command line.

It reads ``config.json`` (and ``options.json``) from its directory of the
:class:`EngineStore`, runs a :class:`~kdamon.engine.core.Monitor`, and
publishes ``status.json`` (with the intervals in use, widened when the
engine's work cannot keep the configured ones, and the schemes it only
counts) and, after each aggregation, the snapshots in ``latest.kdr`` (what
``kdamon show`` and ``top`` read).
SIGTERM or SIGINT stop it; SIGHUP re-reads ``config.json`` and restarts the
monitor with it (the engine's ``commit``: region history starts over).  It
ends by itself when every target has exited.

Start-up is reported on ``ready_fd``: ``ok`` once the monitor runs, or the
error that prevented it.  Its standard error is the kdamond's log, where
warnings (e.g. widened intervals) go as ``kdamon: MESSAGE`` lines.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, TextIO

from kdamon.backend.engine_store import EngineState, EngineStore
from kdamon.backend.live import publish_latest
from kdamon.errors import KdamonError, KdamonWarning
from kdamon.model import Kdamond

if TYPE_CHECKING:
    from kdamon.engine.core import Monitor

__all__ = ["main", "run_daemon"]

_PUBLISH_EVERY_NS = 500_000_000


class _Daemon:
    def __init__(self, store: EngineStore, index: int) -> None:
        self.store = store
        self.index = index
        self.generation = 0
        self.wake = threading.Event()
        self.stop_requested = False
        self.reload_requested = False
        self.stat_only = False
        self._published_ns = 0
        self._widened = False

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            self.reload_requested = True
        else:
            self.stop_requested = True
        self.wake.set()

    def publish(self, state: str, monitor: Monitor | None = None, error: str = "") -> None:
        """Write ``status.json``: the state, and the monitor's scheme stats, operations and pace."""
        if monitor is None:
            self.store.write_state(
                self.index,
                EngineState(
                    pid=os.getpid(), state=state, generation=self.generation, error=error, updated_ns=time.time_ns()
                ),
            )
            return
        pace = monitor.pace
        self.store.write_state(
            self.index,
            EngineState(
                pid=os.getpid(),
                state=state,
                generation=self.generation,
                stats=monitor.scheme_stats(),
                error=error,
                updated_ns=time.time_ns(),
                ops=monitor.ops.name,
                counted_only=monitor.counted_only,
                sample_us=pace.sample_us,
                aggr_us=pace.aggr_us,
                busy_us=pace.busy_us,
                late_us=pace.late_us,
                widened=pace.widened,
            ),
        )

    def monitor(self, kdamond: Kdamond) -> Monitor:
        """A started Monitor for the kdamond's context."""
        from kdamon.engine.core import Callbacks, Monitor

        if not kdamond.contexts:
            raise KdamonError("the configuration has no context: give the engine something to monitor")

        directory = self.store.dir(self.index)

        def after_aggregation(monitor: Monitor) -> None:
            publish_latest(directory, monitor.snapshots(), monitor.ops.name)
            now = time.monotonic_ns()
            widened = monitor.pace.widened
            if now - self._published_ns >= _PUBLISH_EVERY_NS or widened != self._widened:
                self._published_ns, self._widened = now, widened
                self.publish("on", monitor)

        def before_terminate(_monitor: Monitor) -> None:
            self.wake.set()

        stat_only = self.store.read_stat_only(self.index)
        monitor = Monitor(
            kdamond.contexts[0],
            callbacks=Callbacks(after_aggregation=after_aggregation, before_terminate=before_terminate),
            stat_only=stat_only,
        )
        self.stat_only = stat_only
        monitor.start()
        return monitor

    def reload(self, monitor: Monitor, current: Kdamond) -> tuple[Monitor, Kdamond]:
        """Restart with ``config.json``; on failure keep ``current`` and publish why."""
        monitor.stop()
        monitor.join()
        self.generation += 1
        problem = ""
        try:
            wanted = self.store.read_config(self.index)
            monitor, current = self.monitor(wanted), wanted
        except (KdamonError, OSError) as failure:
            problem = f"tune failed, kept the previous configuration: {failure}"
            self.store.write_config(self.index, current, stat_only=self.stat_only)
            monitor = self.monitor(current)
        self.publish("on", monitor, problem)
        return monitor, current

    def run(self, ready_fd: int | None) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self.on_signal)
        try:
            current = self.store.read_config(self.index)
            monitor = self.monitor(current)
        except (KdamonError, OSError) as failure:
            self.publish("off", error=str(failure))
            _report(ready_fd, f"error: {failure}")
            return 1
        self.publish("on", monitor)
        _report(ready_fd, "ok")
        while not self.stop_requested and monitor.running:
            self.wake.wait(1.0)
            self.wake.clear()
            if self.reload_requested and not self.stop_requested:
                self.reload_requested = False
                monitor, current = self.reload(monitor, current)
        monitor.stop()
        problem = "" if self.stop_requested else "every target exited"
        try:
            monitor.join()
        except KdamonError as failure:
            problem = str(failure)
        self.publish("off", monitor, problem)
        return 0


def _report(fd: int | None, message: str) -> None:
    if fd is None:
        return
    try:
        os.write(fd, message.encode() + b"\n")
    finally:
        os.close(fd)


def run_daemon(directory: Path, ready_fd: int | None = None) -> int:
    """Run the engine kdamond of ``directory`` (``<state_dir>/engine/<N>``); the exit status."""
    return _Daemon(EngineStore(directory.parent), int(directory.name)).run(ready_fd)


def _log_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """kdamon's warnings into the log as ``kdamon: MESSAGE`` lines; any other as Python shows it."""
    text = (
        f"kdamon: {message}\n"
        if issubclass(category, KdamonWarning)
        else warnings.formatwarning(message, category, filename, lineno, line)
    )
    (file or sys.stderr).write(text)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m kdamon.backend.engine_daemon DIRECTORY [--ready-fd N]``; the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m kdamon.backend.engine_daemon",
        description="Run one engine kdamond of kdamon's state directory "
        "(kdamon start runs it; not meant to be run by hand).",
    )
    parser.add_argument("directory", type=Path, help="the kdamond's directory, <state_dir>/engine/<N>")
    parser.add_argument("--ready-fd", type=int, help="a file descriptor to report start-up on (ok or the error)")
    args = parser.parse_args(argv)
    warnings.showwarning = _log_warning
    warnings.simplefilter("always", KdamonWarning)
    try:
        return run_daemon(args.directory, args.ready_fd)
    except (KdamonError, OSError) as failure:  # after start-up (what fails before it is reported on ready_fd)
        sys.stderr.write(f"kdamon: error: {failure}\n")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
