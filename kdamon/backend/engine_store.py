"""The state directory of engine daemons: one directory per engine kdamond.

Layout under ``<state_dir>/engine/<N>/``:

* ``config.json``: the kdamond's configuration (kdamon's JSON format, one
  kdamond); ``kdamon tune`` replaces it, then sends SIGHUP;
* ``options.json``: how the engine runs that configuration (``stat_only``:
  only count the schemes whose action it cannot apply), written with it;
* ``status.json``: written by the daemon (atomically) when it starts, after
  aggregations (at most twice a second), on every reload and when it ends;
* ``latest.kdr``: the last aggregation's snapshots (a record file, replaced
  atomically after each aggregation);
* ``daemon.log``: the daemon's standard error.

Reading the store never writes anything.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs

from kdamon.errors import EngineError
from kdamon.model import Config, Kdamond, SchemeStats
from kdamon.statefiles import write_atomic

__all__ = ["EngineState", "EngineStore"]

_STATS_FIELDS = tuple(a.name for a in attrs.fields(SchemeStats))


def _int_tuple(values: Iterable[int]) -> tuple[int, ...]:
    return tuple(values)


@attrs.frozen
class EngineState:
    """What an engine daemon last published about itself."""

    pid: int
    state: str  # "on" or "off"
    generation: int = 0  # incremented by each reload (tune)
    stats: tuple[SchemeStats, ...] = ()
    error: str = ""
    updated_ns: int = 0
    ops: str = ""  # the operations set as it watches now, e.g. "vaddr/smaps+uffd"
    counted_only: tuple[int, ...] = attrs.field(default=(), converter=_int_tuple)
    """The schemes run as stat schemes: the engine cannot apply their action (stat_only)."""
    sample_us: int = 0  # the intervals in use now (0: not started)
    aggr_us: int = 0
    busy_us: int = 0  # the engine's own work in a typical sample of the last aggregation
    late_us: int = 0  # how late its wake-ups came then
    widened: bool = False  # the intervals were widened for that work

    def to_json(self) -> str:
        data = attrs.asdict(self)
        data["stats"] = [attrs.asdict(s) for s in self.stats]
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> EngineState:
        data: dict[str, Any] = json.loads(text)
        stats = tuple(SchemeStats(**{k: s.get(k) for k in _STATS_FIELDS}) for s in data.pop("stats", ()))
        return cls(stats=stats, **data)


class EngineStore:
    """Engine daemon directories under ``root`` (``<state_dir>/engine``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def dir(self, index: int) -> Path:
        return self.root / str(index)

    def indexes(self) -> list[int]:
        """The engine kdamonds that exist, in order (reads only)."""
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        return sorted(int(n) for n in names if n.isdigit())

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def create(self, kdamond: Kdamond, *, stat_only: bool = False) -> int:
        """A new engine kdamond directory holding ``kdamond``; returns its index."""
        with self._locked():
            taken = set(self.indexes())
            index = next(i for i in range(len(taken) + 1) if i not in taken)
            self.dir(index).mkdir()
            self.write_config(index, kdamond, stat_only=stat_only)
        return index

    def remove(self, index: int) -> None:
        """Remove the directory and all in it (also what a killed kdamon left half-written)."""
        d = self.dir(index)
        try:
            for name in os.listdir(d):
                (d / name).unlink(missing_ok=True)
            d.rmdir()
        except FileNotFoundError:
            pass
        except OSError as error:
            raise EngineError(f"cannot remove {d}: {error.strerror}; remove it by hand") from error

    # -- configuration ------------------------------------------------------
    def config_path(self, index: int) -> Path:
        return self.dir(index) / "config.json"

    def write_config(self, index: int, kdamond: Kdamond, *, stat_only: bool = False) -> None:
        """Store the configuration, and whether the engine may only count the schemes
        whose action it cannot apply (see :mod:`kdamon.engine.actions`)."""
        from kdamon.model.serial import dump_config  # cattrs: only when a config is stored

        write_atomic(self.dir(index) / "options.json", json.dumps({"stat_only": stat_only}))
        write_atomic(self.config_path(index), dump_config(Config((kdamond,)), "json"))

    def read_stat_only(self, index: int) -> bool:
        """Whether the stored configuration runs with ``stat_only`` (False if not recorded)."""
        try:
            options = json.loads((self.dir(index) / "options.json").read_text())
        except FileNotFoundError:
            return False
        except ValueError as error:
            raise EngineError(
                f"{self.dir(index) / 'options.json'} is corrupt ({error}); stop engine:{index} and start it again"
            ) from None
        return bool(options.get("stat_only", False))

    def read_config(self, index: int) -> Kdamond:
        try:
            text = self.config_path(index).read_text()
        except FileNotFoundError:
            raise EngineError(
                f"there is no engine kdamond {index} (no {self.config_path(index)}); `kdamon status` lists them"
            ) from None
        from kdamon.model.serial import load_config  # cattrs: only when a config is read

        return load_config(text, "json").kdamonds[0]

    # -- status ---------------------------------------------------------------
    def log_path(self, index: int) -> Path:
        return self.dir(index) / "daemon.log"

    def write_state(self, index: int, state: EngineState) -> None:
        write_atomic(self.dir(index) / "status.json", state.to_json())

    def read_state(self, index: int) -> EngineState | None:
        """The daemon's last published state; None before its first one."""
        try:
            return EngineState.from_json((self.dir(index) / "status.json").read_text())
        except FileNotFoundError:
            return None
        except (ValueError, TypeError) as error:
            raise EngineError(
                f"{self.dir(index) / 'status.json'} is corrupt ({error}); "
                f"stop engine:{index} with `kdamon stop engine:{index}`"
            ) from None

    def wait_state(self, index: int, accept: Any, timeout_s: float) -> EngineState | None:
        """Poll the state until ``accept(state)`` is true; None on timeout."""
        deadline = time.monotonic() + timeout_s
        delay = 0.005
        while True:
            state = self.read_state(index)
            if state is not None and accept(state):
                return state
            if time.monotonic() >= deadline:
                return None
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
