"""``kdamon record``: stream access snapshots (and scheme applications) into a record file.

The snapshots come from a temporary kdamond of kdamon's own (kernel DAMON's
trace events or kdamon's engine, whichever ``--backend`` picks) or, with
``--kdamond``, from a running kdamond watched read-only; they are appended to
kdamon's record file one flushed chunk at a time, so a recorder that is
killed leaves a readable file.  Recording ends after ``--duration``, when the
targets exit, or on SIGINT or SIGTERM (a second SIGINT interrupts at once).

With ``--include-children`` the processes the targets fork (and their
descendants) become targets of the running kdamond as they appear
(:class:`~kdamon.events.forks.ForkFollower`; the backends append them, see
:meth:`Backend.stream <kdamon.backend.types.Backend.stream>`); each one added
is written to the record's metadata with its parent, and recording ends when
every followed process has exited.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from kdamon.cli import common
from kdamon.cli.arg_types import duration
from kdamon.cli.kdamond_options import add_kdamond_options, add_paddr_option, build_kdamond, kdamond_options_given

if TYPE_CHECKING:
    from kdamon.backend.host import Host
    from kdamon.events.forks import ForkFollower
    from kdamon.model import Kdamond


def register(sub: Any) -> None:
    record = sub.add_parser(
        "record",
        help="record the data access pattern of processes, physical memory, or a running kdamond",
        usage="kdamon record [-o FILE] [--duration DURATION] [options] "
        "(--pid PID ... [--include-children] | --paddr | --kdamond ID | "
        "[--include-children] -- CMD [ARGS...])",
        description="Append every aggregation's snapshot to FILE (kdamon's record format; `kdamon report` "
        "reads it), with the scheme applications (damos_before_apply) and interval tunes kernel "
        "DAMON traces. Monitor processes (--pid, repeatable), a command started with -- CMD, or "
        "physical memory (--paddr) with a kdamond of kdamon's own, removed at the end; or attach "
        "read-only to a running kdamond (--kdamond ID, any of `kdamon status`, DAMON_STAT's too). "
        "The operations update interval defaults to 1s here, so that memory the target maps later "
        "is monitored soon.",
    )
    record.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("kdamon.kdr"),
        metavar="FILE",
        help="record file (default kdamon.kdr; - for standard output); an existing one is "
        "replaced once the first snapshot is in, and left as it was if recording fails "
        "before",
    )
    record.add_argument(
        "--duration",
        type=duration(),
        metavar="DURATION",
        help="stop after this long (30s, 5m; plain numbers are seconds; default: until the targets exit or a signal)",
    )
    common.add_pid_option(record, "a running process to record")
    record.add_argument(
        "--include-children",
        action="store_true",
        help="with --pid or -- CMD: also record every process they fork (children, "
        "grandchildren, those running already too), each a new target of the running "
        "kdamond from when it is seen: through the process connector's fork events "
        "(root), else by scanning /proc every update interval",
    )
    add_paddr_option(record)
    record.add_argument(
        "--kdamond", metavar="ID", help="attach read-only to this running kdamond instead of starting one"
    )
    record.add_argument(
        "--ready-file",
        type=Path,
        metavar="FILE",
        help="with -- CMD: start monitoring once CMD has created FILE (e.g. when it has "
        "set up its memory); a stale FILE is removed first",
    )
    common.add_backend_option(record)
    add_kdamond_options(record, targets=False, update_default="1s here")
    record.add_argument(
        "cmd",
        nargs=argparse.REMAINDER,
        metavar="-- CMD [ARGS...]",
        help="a command to start and record (the recording ends when it exits)",
    )
    record.set_defaults(handler=_record)


class _Progress:
    """Progress on a terminal's standard error: one ``\\r``-updated line, or (``TERM=dumb``: a serial
    console, a log) a whole line every ``DUMB_EVERY_S``; nothing in a pipe."""

    DUMB_EVERY_S = 10.0

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tty = sys.stderr.isatty()
        self.dumb = common.dumb_terminal()
        self.started = time.monotonic()
        self.count = 0
        self.applies = 0
        self.reason = ""
        self._shown = 0.0

    def update(self, count: int, applies: int) -> None:
        self.count, self.applies = count, applies
        now = time.monotonic()
        if not self.tty or now - self._shown < (self.DUMB_EVERY_S if self.dumb else 0.2):
            return
        self._shown = now
        line = f"kdamon: recording {now - self.started:6.1f} s, {count} snapshots, {applies} scheme applications"
        sys.stderr.write(f"{line}\n" if self.dumb else f"\r{line} ")
        sys.stderr.flush()

    def finish(self) -> None:
        from kdamon.model import format_size
        from kdamon.userfiles import STDOUT

        if self.tty and not self.dumb and self._shown:
            sys.stderr.write("\n")
        written = self.path != STDOUT and self.path.is_file()
        size = f" ({format_size(self.path.stat().st_size, approx=True)})" if written else ""
        why = f" ({self.reason})" if self.reason else ""
        applies = f" and {self.applies} scheme applications" if self.applies else ""
        common.say(
            f"recorded {self.count} snapshots{applies}{size} in {time.monotonic() - self.started:.1f} s to "
            f"{common.output_name(self.path)}{why}"
        )


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


def _check_sources(args: argparse.Namespace, cmd: list[str]) -> None:
    from kdamon.errors import ConfigError

    sources = [
        name
        for name, given in (
            ("--pid", bool(args.pid)),
            ("--paddr", args.paddr),
            ("--kdamond", args.kdamond is not None),
            ("-- CMD", bool(cmd)),
        )
        if given
    ]
    if len(sources) != 1 and sources != ["--pid", "-- CMD"]:
        raise ConfigError(
            "target",
            "give what to record: --pid PID (repeatable, with or without -- CMD), "
            "--paddr, --kdamond ID or -- CMD [ARGS...]" + (f"; got {' and '.join(sources)}" if sources else ""),
        )
    if args.include_children and not (args.pid or cmd):
        raise ConfigError(
            "--include-children",
            "--include-children follows the processes that --pid or -- CMD names: give one of them",
        )
    if args.ready_file is not None and not cmd:
        raise ConfigError("--ready-file", "--ready-file waits for a command started with -- CMD")
    if args.kdamond is not None:
        given = kdamond_options_given(args)
        if given:
            raise ConfigError(
                "--kdamond",
                f"a kdamond that runs keeps its parameters: {', '.join(given)} cannot be given with --kdamond",
            )


def _say_if_applications_unseen(host: Host, kdamond: Kdamond, backend: str) -> None:
    """A kernel before 6.7 has no ``damos_before_apply`` event: its schemes' applications cannot be recorded."""
    from kdamon.kernel.tracefs import damon_events
    from kdamon.trace.events import BEFORE_APPLY

    root = host.tracefs_root()
    if backend in ("sysfs", "debugfs") and root is not None and any(c.schemes for c in kdamond.contexts):
        if BEFORE_APPLY not in damon_events(host.io, root):
            common.say(
                "this kernel has no damon:damos_before_apply trace event (Linux 6.7+): the record holds the "
                "snapshots, not the schemes' applications (`kdamon status --refresh` shows their stats)"
            )


def _record(args: argparse.Namespace) -> int:
    from kdamon.backend.live import StreamWatch, Watch, find_watched, open_watch
    from kdamon.backend.process import launch, pid_alive, terminate
    from kdamon.backend.types import KdamondId
    from kdamon.errors import KdamonError
    from kdamon.records.types import RecordMeta
    from kdamon.records.writer import RecordWriter
    from kdamon.userfiles import ensure_writable

    cmd = common.strip_dashes(list(args.cmd))
    _check_sources(args, cmd)
    duration_us: int | None = args.duration
    ensure_writable(args.output)
    host = common.make_host()
    if args.ready_file is not None:
        args.ready_file.unlink(missing_ok=True)
    child = launch(cmd) if cmd else None
    pids = tuple(args.pid or ()) + ((child.pid,) if child is not None else ())
    stop = _StopRequest()
    if args.update is None:
        args.update = 1_000_000  # a new command maps its memory after monitoring starts: find it soon
    follower: ForkFollower | None = None
    try:
        if child is not None and args.ready_file is not None:
            _wait_ready(child, args.ready_file)
        watch: Watch
        if args.kdamond is not None:
            watch = open_watch(host, find_watched(host, KdamondId.parse(args.kdamond)))
            common.say(f"recording {watch.watched.id} read-only, from its trace events")
            targets: tuple[dict[str, Any], ...] = tuple(
                {"kdamond": str(watch.watched.id), "target": what} for what in watch.watched.targets
            )
        else:
            started = (child.pid,) if child is not None else ()  # build_kdamond adds the --pid ones
            kdamond = build_kdamond(args, pids=started)
            if args.include_children:
                follower = _follow(pids, kdamond.contexts[0].intervals.update_us)
                running = tuple(pid for pid in follower.pids() if pid not in pids)  # descendants running already
                kdamond = build_kdamond(args, pids=started + running)
            watch = StreamWatch(
                host,
                kdamond,
                args.backend,
                engine_stat_only=args.engine_stat_only,
                targets=follower.pids if follower is not None else None,
            )
            what = f"pid {', '.join(map(str, pids))}" if pids else "physical memory"
            common.say(f"recording {what}{' and its descendants' if follower else ''} with {watch.reason}")
            _say_if_applications_unseen(host, kdamond, watch.watched.id.backend)
            regions = kdamond.contexts[0].targets[0].regions if not pids else ()
            targets = tuple(
                _describe(t.pid, child, cmd, follower) for t in kdamond.contexts[0].targets if t.pid is not None
            ) or ({"paddr": [[r.start, r.end] for r in regions]},)
        watched = watch.watched
        meta = RecordMeta(
            producer=watched.id.backend if watched.id.backend != "module" else "tracefs",
            sample_us=watched.sample_us,
            aggr_us=watched.aggr_us,
            ops=watched.ops,
            targets=targets,
        )

        progress = _Progress(args.output)
        deadline = None if duration_us is None else time.monotonic() + duration_us / 1e6

        def done() -> bool:
            if stop.requested:
                progress.reason = "stopped by a signal"
            elif deadline is not None and time.monotonic() >= deadline:
                progress.reason = f"after {(duration_us or 0) / 1e6:g} s"
            elif follower is not None:
                if child is not None:
                    child.poll()  # (reaped once it exits)
                if not follower.running():
                    progress.reason = "every followed process exited"
            elif child is not None and child.poll() is not None:
                progress.reason = f"pid {child.pid} exited"
            elif pids and not any(pid_alive(pid) for pid in pids):
                progress.reason = "every target exited"
            return bool(progress.reason)

        with watch, RecordWriter(args.output, meta, targets_appended=follower is not None) as writer:
            for frame in watch.frames(done):
                for added in frame.added:
                    writer.append_target(_describe(added.pid, child, cmd, follower))
                for tune in frame.tunes:
                    writer.append_tune(tune)
                writer.append_applies(frame.snapshots[0].kdamond_idx, list(frame.applies))
                for snapshot in frame.snapshots:
                    writer.append(snapshot)
                progress.update(writer.nr_snapshots, writer.nr_applies)
            if not done():
                progress.reason = "the kdamond ended" + (": its targets exited" if pids else "")
            if not writer.nr_snapshots:
                writer.discard()
                raise KdamonError(
                    f"no snapshot was recorded ({progress.reason}); {args.output} was left as "
                    "it was. Record for longer than one aggregation interval (--aggr)"
                )
        progress.finish()
    finally:
        stop.restore()
        if follower is not None:
            follower.stop()
        if child is not None and child.poll() is None:
            terminate(child.pid)
    return 0


def _follow(pids: tuple[int, ...], update_us: int) -> ForkFollower:
    """Follow the forks of ``pids``, saying how on standard error."""
    from kdamon.events.forks import ForkFollower

    follower = ForkFollower(pids, interval_s=max(update_us, 1) / 1e6).start()
    whose = f"pid {', '.join(map(str, pids))}"
    if follower.source == "connector":
        common.say(f"following the descendants of {whose} through the process connector's fork events")
    else:
        common.say(
            f"following the descendants of {whose} by scanning /proc every {update_us / 1e6:g} s "
            f"(a child that exits sooner may be missed), as the process connector is not available: "
            f"{follower.why_scan}"
        )
    return follower


def _describe(
    pid: int, child: subprocess.Popen[bytes] | None, cmd: list[str], follower: ForkFollower | None
) -> dict[str, Any]:
    """A process target as the record's metadata lists it: its pid, the command kdamon
    started, and with --include-children its parent."""
    described: dict[str, Any] = {"pid": pid}
    if child is not None and pid == child.pid:
        described["cmd"] = " ".join(cmd)
    if follower is not None:
        parent = follower.parent(pid)
        described["parent"] = parent if parent is not None else _parent_of(pid)
    return described


def _parent_of(pid: int) -> int | None:
    """The parent pid of a running process (None if it is gone)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
    except (OSError, IndexError, ValueError):
        return None
