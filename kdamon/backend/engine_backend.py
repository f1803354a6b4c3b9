"""kdamon's pure-Python engine behind the Monitor API.

``start`` runs each kdamond in a background daemon process
(:mod:`kdamon.backend.engine_daemon`) that lives in the state directory, so
that ``stop``, ``status`` and ``tune`` from later kdamon processes find it;
``stream`` runs the engine in this process for ``kdamon record``.

A scheme whose action the engine cannot apply (:mod:`kdamon.engine.actions`)
is refused by ``start``, ``tune`` and ``stream``, saying what the engine
applies and how to proceed, unless the backend was made with
``stat_only=True`` (``--engine-stat-only``): such schemes then run as
``stat`` schemes, with an :class:`~kdamon.errors.EngineWarning` saying so.
"""

from __future__ import annotations

import os
import signal
import sys
import warnings
from collections.abc import Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING

from kdamon.backend.engine_store import EngineState, EngineStore
from kdamon.backend.host import Host
from kdamon.backend.process import pid_alive, terminate
from kdamon.backend.types import BackendName, KdamondId, KdamondStatus, StreamRecord, TargetAdded, WantedPids
from kdamon.errors import EngineError, EngineWarning, KdamonError
from kdamon.model import Kdamond, format_duration_us

if TYPE_CHECKING:
    from kdamon.backend.engine_store import EngineState

__all__ = ["DAEMON_MARKS", "DAEMON_MODULE", "EngineBackend"]

DAEMON_MODULE = "kdamon.backend.engine_daemon"
"""The module that runs an engine daemon (``python -m``), :mod:`kdamon.backend.engine_daemon`."""
DAEMON_MARKS = (DAEMON_MODULE, "_engine-daemon")
"""An argument in its command line that shows a process is an engine daemon: the module
(``python -m kdamon.backend.engine_daemon``), or the hidden ``kdamon _engine-daemon``
command that earlier versions started it with, so that their running daemons stay known."""

_TUNE_TIMEOUT_S = 30.0


def _daemon_of(state: EngineState | None) -> int | None:
    """The daemon's pid if it still runs (a process of that pid that is no engine daemon does not count)."""
    if state is None or state.state != "on" or not pid_alive(state.pid):
        return None
    try:
        arguments = Path(f"/proc/{state.pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    return state.pid if any(mark.encode() in arguments for mark in DAEMON_MARKS) else None


def _daemon_env() -> dict[str, str]:
    """This environment, with this kdamon importable even when it is not installed."""
    import kdamon

    env = dict(os.environ)
    source = str(Path(kdamon.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (source, env.get("PYTHONPATH", "")) if p)
    return env


def _notes(state: EngineState) -> list[str]:
    """What the daemon published about how it runs: operations, widened intervals,
    schemes it only counts."""
    notes = []
    if state.ops:
        notes.append(f"operations {state.ops}")
    if state.widened:
        notes.append(
            f"intervals widened to sample {format_duration_us(state.sample_us, approx=True)}, "
            f"aggr {format_duration_us(state.aggr_us, approx=True)}: the engine's access check "
            f"and bookkeeping take {format_duration_us(state.busy_us, approx=True)} of a sample "
            f"and its wake-ups come {format_duration_us(state.late_us, approx=True)} late"
        )
    if state.counted_only:
        which = ", ".join(str(i) for i in state.counted_only)
        notes.append(
            f"scheme{'s' if len(state.counted_only) > 1 else ''} {which} only counted, as stat "
            "(--engine-stat-only: the engine cannot apply the action)"
        )
    if state.error:
        notes.append(state.error)
    return notes


class EngineBackend:
    """Engine kdamonds: daemons recorded under ``<state_dir>/engine``.

    ``stat_only`` lets schemes whose action the engine cannot apply run as
    ``stat`` schemes instead of being refused; ``chosen_because`` is why
    ``--backend auto`` chose the engine (a refusal says it).
    """

    name: BackendName = "engine"

    def __init__(self, host: Host, *, stat_only: bool = False, chosen_because: str = "") -> None:
        self.host = host
        self.store = EngineStore(host.engine_dir)
        self.stat_only = stat_only
        self.chosen_because = chosen_because

    def _index(self, kid: KdamondId) -> int:
        if kid.backend != "engine":
            raise EngineError(f"{kid} is not an engine kdamond")
        if kid.index not in self.store.indexes():
            raise EngineError(f"there is no engine kdamond {kid}; `kdamon status` lists them")
        return kid.index

    def start(self, kdamond: Kdamond) -> tuple[KdamondId, int | None]:
        import subprocess

        # Check here first: configuration errors surface at once.
        self._check(kdamond)
        index = self.store.create(kdamond, stat_only=self.stat_only)
        directory = self.store.dir(index)
        read_fd, write_fd = os.pipe()
        try:
            with open(self.store.log_path(index), "ab") as log:
                subprocess.Popen(
                    [sys.executable, "-m", DAEMON_MODULE, str(directory), "--ready-fd", str(write_fd)],
                    pass_fds=(write_fd,),
                    start_new_session=True,
                    env=_daemon_env(),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
        except OSError as error:
            os.close(read_fd)
            self.store.remove(index)
            raise EngineError(f"cannot start the engine daemon: {error.strerror}") from error
        finally:
            os.close(write_fd)
        with os.fdopen(read_fd, "rb") as ready:
            answer = ready.read().decode(errors="replace").strip()
        state = self.store.read_state(index)
        if answer != "ok" or state is None:
            log_text = self.store.log_path(index).read_text(errors="replace").strip()
            self.store.remove(index)
            lines = log_text.splitlines()
            reason = answer.removeprefix("error: ") or (lines[-1] if lines else "it exited at once")
            raise EngineError(f"the engine could not start: {reason}")
        kid = KdamondId("engine", str(index))
        self._say_counted(kdamond, str(kid))
        return kid, state.pid

    def _check(self, kdamond: Kdamond) -> None:
        """Refuse what the engine cannot run, before anything starts."""
        from kdamon.engine.actions import counted_only
        from kdamon.engine.schemes import check_schemes_supported

        if len(kdamond.contexts) != 1:
            raise EngineError("an engine kdamond runs exactly one context: give one")
        context = kdamond.contexts[0]
        check_schemes_supported(context.schemes)
        unapplied = counted_only(context)
        if not unapplied or self.stat_only:
            return
        only_count = (
            "or give --engine-stat-only to have the engine only count them, as stat schemes (tried, never applied)"
        )
        if self.chosen_because:
            raise EngineError(
                f"--backend auto chose kdamon's engine because {self.chosen_because}, and "
                f"{unapplied.explain()}. To proceed, make kernel DAMON usable here (see why "
                f"above) to have it apply them, change or drop those schemes, {only_count}"
            )
        raise EngineError(
            f"{unapplied.explain()}. To proceed, run them on kernel DAMON (--backend auto or "
            f"sysfs), change or drop those schemes, {only_count}"
        )

    def _say_counted(self, kdamond: Kdamond, who: str) -> None:
        """Warn that schemes run as stat schemes (only with ``stat_only``)."""
        from kdamon.engine.actions import counted_only

        unapplied = counted_only(kdamond.contexts[0])
        if unapplied:
            warnings.warn(
                EngineWarning(
                    f"{who} only counts {unapplied.short()}, as stat schemes, as "
                    f"--engine-stat-only asks: {unapplied.explain()}"
                ),
                stacklevel=3,
            )

    def stop(self, kid: KdamondId) -> None:
        index = self._index(kid)
        pid = _daemon_of(self.store.read_state(index))
        if pid is not None:
            terminate(pid)
        self.store.remove(index)

    def configuration(self, kid: KdamondId) -> Kdamond:
        return self.store.read_config(self._index(kid))

    def tune(self, kid: KdamondId, kdamond: Kdamond) -> None:
        index = self._index(kid)
        self._check(kdamond)
        before = self.store.read_state(index)
        pid = _daemon_of(before)
        if pid is None or before is None:
            raise EngineError(f"{kid} is not running: stop it and start it again")
        self.store.write_config(index, kdamond, stat_only=self.stat_only)
        os.kill(pid, signal.SIGHUP)
        after = self.store.wait_state(
            index, lambda s: s.generation > before.generation or s.state != "on", _TUNE_TIMEOUT_S
        )
        if after is None:
            raise EngineError(
                f"{kid} (pid {pid}) did not take the new configuration within "
                f"{_TUNE_TIMEOUT_S:.0f} s; see {self.store.log_path(index)}"
            )
        if after.error:
            raise EngineError(f"{kid}: {after.error}")
        self._say_counted(kdamond, str(kid))

    def status(self) -> list[KdamondStatus]:
        out = []
        for index in self.store.indexes():
            kid = KdamondId("engine", str(index))
            state = self.store.read_state(index)
            pid = _daemon_of(state)
            notes = [f"engine daemon, log {self.store.log_path(index)}"]
            if state is not None:
                notes += _notes(state)
            try:
                kdamond: Kdamond | None = self.store.read_config(index)
            except KdamonError as error:
                kdamond = None
                notes.append(f"configuration unreadable: {error}")
            stats = state.stats if state is not None else ()
            out.append(KdamondStatus(kid, "kdamon", pid is not None, pid, kdamond, stats, "; ".join(notes)))
        return out

    def stream(
        self, kdamond: Kdamond, until: Callable[[], bool], targets: WantedPids | None = None
    ) -> Generator[StreamRecord, None, None]:
        """See :meth:`Backend.stream <kdamon.backend.types.Backend.stream>`: the engine runs in
        a thread of this process; wanted processes join the running monitor
        (:meth:`Monitor.add_targets <kdamon.engine.core.Monitor.add_targets>`)."""
        import queue

        from kdamon.backend.growth import joining_target
        from kdamon.engine.core import Callbacks, Monitor

        self._check(kdamond)
        self._say_counted(kdamond, "the engine")
        ready: queue.SimpleQueue[StreamRecord] = queue.SimpleQueue()

        def after_aggregation(monitor: Monitor) -> None:
            for index, target in monitor.take_added():  # announced before their first snapshots
                ready.put(TargetAdded(index, target.pid or 0))
            for snapshot in monitor.snapshots():
                ready.put(snapshot)

        context = kdamond.contexts[0]
        monitor = Monitor(context, callbacks=Callbacks(after_aggregation=after_aggregation), stat_only=self.stat_only)
        asked = {t.pid for t in context.targets}
        monitor.start()
        try:
            while monitor.running and not until():
                if targets is not None:
                    new = [pid for pid in dict.fromkeys(targets()) if pid not in asked]
                    if new:
                        asked.update(new)
                        monitor.add_targets(joining_target(context, pid) for pid in new)
                try:
                    yield ready.get(timeout=0.05)
                except queue.Empty:
                    continue
        finally:
            monitor.stop()
            monitor.join()
        while not ready.empty():
            yield ready.get()
