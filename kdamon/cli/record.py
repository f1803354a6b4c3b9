"""``kdamon record``: stream a process's access snapshots into a record file.

The snapshots come from kernel DAMON's trace events or from kdamon's engine
(whichever ``--backend`` picks) and are appended to kdamon's record file one
flushed chunk at a time, so a recorder that is killed leaves a readable file.
Recording ends after ``--duration``, when the target exits, or on SIGINT or
SIGTERM (a second SIGINT interrupts at once).
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from kdamon.cli import common
from kdamon.cli.kdamond_options import add_kdamond_options, build_kdamond


def register(sub: Any) -> None:
    record = sub.add_parser(
        "record", help="record a process's data access pattern into a file",
        usage="kdamon record [-o FILE] [--duration S] [--backend B] [options] (--pid PID | -- CMD [ARGS...])",
        description="Monitor --pid PID, or a command started with -- CMD, and append every aggregation's "
                    "snapshot to FILE (kdamon's record format; `kdamon report` reads it). The operations "
                    "update interval defaults to 1s here, so that memory the target maps later is "
                    "monitored soon.")
    record.add_argument("-o", "--output", type=Path, default=Path("kdamon.kdr"),
                        help="record file (default kdamon.kdr); an existing one is replaced once the first "
                             "snapshot is in, and left as it was if recording fails before")
    record.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    record.add_argument("--pid", type=int, help="a running process to record")
    record.add_argument("--ready-file", type=Path, metavar="FILE",
                        help="with -- CMD: start monitoring once CMD has created FILE (e.g. when it has "
                             "set up its memory); a stale FILE is removed first")
    common.add_backend_option(record)
    add_kdamond_options(record, targets=False)
    record.add_argument("cmd", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    record.set_defaults(handler=_record)


class _Progress:
    """A ``\\r``-updated line on a terminal's standard error; nothing in a pipe."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tty = sys.stderr.isatty()
        self.started = time.monotonic()
        self.count = 0
        self.reason = ""
        self._shown = 0.0

    def update(self, count: int) -> None:
        self.count = count
        now = time.monotonic()
        if self.tty and now - self._shown >= 0.2:
            self._shown = now
            sys.stderr.write(f"\rkdamon: recording {now - self.started:6.1f} s, {count} snapshots ")
            sys.stderr.flush()

    def finish(self) -> None:
        from kdamon.model import format_size

        if self.tty:
            sys.stderr.write("\n")
        size = self.path.stat().st_size if self.path.exists() else 0
        why = f" ({self.reason})" if self.reason else ""
        common.say(f"recorded {self.count} snapshots ({format_size(size, approx=True)}) in "
                   f"{time.monotonic() - self.started:.1f} s to {self.path}{why}")


class _StopRequest:
    """SIGTERM and a first SIGINT end the recording cleanly."""

    def __init__(self) -> None:
        self.requested = False
        self._old = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def restore(self) -> None:
        for signum, handler in self._old.items():
            signal.signal(signum, handler)


def _wait_ready(child: subprocess.Popen[bytes], ready_file: Path) -> None:
    from kdamon.errors import KdamonError

    delay = 0.005
    while not ready_file.exists():
        if child.poll() is not None:
            raise KdamonError(f"the command exited (status {child.returncode}) before it created {ready_file}")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def _record(args: argparse.Namespace) -> int:
    from kdamon.backend.choose import choose_backend
    from kdamon.backend.process import launch, pid_alive, terminate
    from kdamon.backend.types import MonitorRequest
    from kdamon.errors import ConfigError, KdamonError
    from kdamon.records.types import RecordMeta
    from kdamon.records.writer import RecordWriter
    from kdamon.userfiles import ensure_writable

    cmd = common.strip_dashes(list(args.cmd))
    if (args.pid is None) == (not cmd):
        raise ConfigError("--pid", "give exactly one target: --pid PID or -- CMD [ARGS...]")
    if args.ready_file is not None and not cmd:
        raise ConfigError("--ready-file", "--ready-file waits for a command started with -- CMD")
    ensure_writable(args.output)
    host = common.make_host()
    if args.ready_file is not None:
        args.ready_file.unlink(missing_ok=True)
    child = launch(cmd) if cmd else None
    pid = child.pid if child is not None else args.pid
    stop = _StopRequest()
    if args.update is None:
        args.update = "1s"  # a new command maps its memory after monitoring starts: find it soon
    try:
        if child is not None and args.ready_file is not None:
            _wait_ready(child, args.ready_file)
        kdamond = build_kdamond(args, pids=(pid,))
        backend, reason = choose_backend(MonitorRequest(kdamond, stream=True), args.backend, host=host)
        common.say(f"recording pid {pid} with {reason}")
        context = kdamond.contexts[0]
        target: dict[str, Any] = {"pid": pid, "cmd": " ".join(cmd)} if cmd else {"pid": pid}
        meta = RecordMeta(producer=backend.name, sample_us=context.intervals.sample_us,
                          aggr_us=context.intervals.aggr_us, ops=context.ops,
                          targets=(target,))

        progress = _Progress(args.output)
        deadline = None if args.duration is None else time.monotonic() + args.duration

        def done() -> bool:
            if stop.requested:
                progress.reason = "stopped by a signal"
            elif deadline is not None and time.monotonic() >= deadline:
                progress.reason = f"after {args.duration:g} s"
            elif child.poll() is not None if child is not None else not pid_alive(pid):
                progress.reason = f"pid {pid} exited"
            return bool(progress.reason)

        with RecordWriter(args.output, meta) as writer:
            snapshots = backend.stream(kdamond, done)
            try:
                for snapshot in snapshots:
                    writer.append(snapshot)
                    progress.update(writer.nr_snapshots)
            finally:
                snapshots.close()
            if not done():
                progress.reason = "the kdamond ended: its targets exited"
            if not writer.nr_snapshots:
                writer.discard()
                raise KdamonError(f"no snapshot was recorded ({progress.reason}); {args.output} was left as "
                                  "it was. Record for longer than one aggregation interval (--aggr)")
        progress.finish()
    finally:
        stop.restore()
        if child is not None and child.poll() is None:
            terminate(child.pid)
    return 0
