"""kdamon's pure-Python engine behind the Monitor API.

``start`` runs each kdamond in a background daemon process
(:mod:`kdamon.backend.engine_daemon`) that lives in the state directory, so
that ``stop``, ``status`` and ``tune`` from later kdamon processes find it;
``stream`` runs the engine in this process for ``kdamon record``.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING

from kdamon.backend.engine_store import EngineState, EngineStore
from kdamon.backend.host import Host
from kdamon.backend.process import pid_alive, terminate
from kdamon.backend.types import BackendName, KdamondId, KdamondStatus
from kdamon.errors import EngineError, KdamonError
from kdamon.model import Kdamond

if TYPE_CHECKING:
    from kdamon.model.snapshot import Snapshot

__all__ = ["DAEMON_COMMAND", "EngineBackend"]

DAEMON_COMMAND = "_engine-daemon"
"""The hidden ``kdamon`` subcommand that runs :func:`~kdamon.backend.engine_daemon.run_daemon`."""

_TUNE_TIMEOUT_S = 30.0


def _daemon_of(state: EngineState | None) -> int | None:
    """The daemon's pid if it still runs."""
    if state is None or state.state != "on" or not pid_alive(state.pid):
        return None
    try:
        cmdline = Path(f"/proc/{state.pid}/cmdline").read_bytes()
    except OSError:
        return None
    return state.pid if DAEMON_COMMAND.encode() in cmdline else None


def _daemon_env() -> dict[str, str]:
    """This environment, with this kdamon importable even when it is not installed."""
    import kdamon

    env = dict(os.environ)
    source = str(Path(kdamon.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (source, env.get("PYTHONPATH", "")) if p)
    return env


class EngineBackend:
    """Engine kdamonds: daemons recorded under ``<state_dir>/engine``."""

    name: BackendName = "engine"

    def __init__(self, host: Host) -> None:
        self.host = host
        self.store = EngineStore(host.engine_dir)

    def _index(self, kid: KdamondId) -> int:
        if kid.backend != "engine":
            raise EngineError(f"{kid} is not an engine kdamond")
        if kid.index not in self.store.indexes():
            raise EngineError(f"there is no engine kdamond {kid}; `kdamon status` lists them")
        return kid.index

    def start(self, kdamond: Kdamond) -> tuple[KdamondId, int | None]:
        import subprocess

        # Build the monitor here first: configuration errors surface at once.
        self._check(kdamond)
        index = self.store.create(kdamond)
        directory = self.store.dir(index)
        read_fd, write_fd = os.pipe()
        try:
            with open(self.store.log_path(index), "ab") as log:
                subprocess.Popen(
                    [sys.executable, "-m", "kdamon", DAEMON_COMMAND, str(directory), "--ready-fd", str(write_fd)],
                    pass_fds=(write_fd,), start_new_session=True, env=_daemon_env(),
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
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
        return KdamondId("engine", str(index)), state.pid

    def _check(self, kdamond: Kdamond) -> None:
        from kdamon.engine.schemes import check_schemes_supported

        if len(kdamond.contexts) != 1:
            raise EngineError("an engine kdamond runs exactly one context: give one")
        check_schemes_supported(kdamond.contexts[0].schemes)

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
        self.store.write_config(index, kdamond)
        os.kill(pid, signal.SIGHUP)
        after = self.store.wait_state(index, lambda s: s.generation > before.generation or s.state != "on",
                                      _TUNE_TIMEOUT_S)
        if after is None:
            raise EngineError(f"{kid} (pid {pid}) did not take the new configuration within "
                              f"{_TUNE_TIMEOUT_S:.0f} s; see {self.store.log_path(index)}")
        if after.error:
            raise EngineError(f"{kid}: {after.error}")

    def status(self) -> list[KdamondStatus]:
        out = []
        for index in self.store.indexes():
            kid = KdamondId("engine", str(index))
            state = self.store.read_state(index)
            pid = _daemon_of(state)
            notes = [f"engine daemon, log {self.store.log_path(index)}"]
            if state is not None and state.ops:
                notes.append(f"operations {state.ops}")
            if state is not None and state.error:
                notes.append(state.error)
            try:
                kdamond: Kdamond | None = self.store.read_config(index)
            except KdamonError as error:
                kdamond = None
                notes.append(f"configuration unreadable: {error}")
            stats = state.stats if state is not None else ()
            out.append(KdamondStatus(kid, "kdamon", pid is not None, pid, kdamond, stats, "; ".join(notes)))
        return out

    def stream(self, kdamond: Kdamond, until: Callable[[], bool]) -> Generator[Snapshot, None, None]:
        import queue

        from kdamon.engine.core import Callbacks, Monitor

        self._check(kdamond)
        ready: queue.SimpleQueue[Snapshot] = queue.SimpleQueue()

        def after_aggregation(monitor: Monitor) -> None:
            for snapshot in monitor.snapshots():
                ready.put(snapshot)

        monitor = Monitor(kdamond.contexts[0], callbacks=Callbacks(after_aggregation=after_aggregation))
        monitor.start()
        try:
            while monitor.running and not until():
                try:
                    yield ready.get(timeout=0.05)
                except queue.Empty:
                    continue
        finally:
            monitor.stop()
            monitor.join()
        while not ready.empty():
            yield ready.get()
