"""The one Monitor API that the kernel drivers and the engine sit behind.

A kdamond is named by a :class:`KdamondId`: the backend and that backend's
key (``sysfs:0`` is kdamond directory 0 of DAMON sysfs, ``engine:1`` an
engine daemon, ``debugfs:0`` the root context of legacy debugfs,
``module:damon_stat`` a DAMON module's kdamond).  A bare
number means a sysfs kdamond.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import TYPE_CHECKING, Literal, Protocol, Union

import attrs

from kdamon.errors import ConfigError
from kdamon.model import Kdamond, SchemeStats

if TYPE_CHECKING:
    from kdamon.trace.assemble import Record

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendName",
    "KdamondId",
    "KdamondStatus",
    "MonitorRequest",
    "Owner",
    "Refreshed",
    "StreamRecord",
    "TargetAdded",
    "WantedPids",
]

BackendName = Literal["sysfs", "debugfs", "engine", "module"]
BACKENDS: tuple[BackendName, ...] = ("sysfs", "debugfs", "engine", "module")
Owner = Literal["kdamon", "foreign", "free"]


@attrs.frozen
class KdamondId:
    """``backend:key``, e.g. ``sysfs:0`` or ``engine:3``."""

    backend: BackendName
    key: str

    def __str__(self) -> str:
        return f"{self.backend}:{self.key}"

    @classmethod
    def parse(cls, text: str) -> KdamondId:
        """``"sysfs:0"``, ``"engine:2"``, or a bare index (a sysfs kdamond)."""
        backend, sep, key = text.partition(":")
        if not sep:
            backend, key = "sysfs", text
        for name in BACKENDS:
            if backend == name and key:
                if name != "module" and not key.isdigit():
                    break
                return cls(name, key)
        raise ConfigError(
            "ID",
            f"{text!r} names no kdamond: use sysfs:N (or just N), engine:N, debugfs:N, as `kdamon status` lists them",
        )

    @property
    def index(self) -> int:
        """The numeric key of a sysfs, debugfs or engine kdamond."""
        return int(self.key)


WantedPids = Callable[[], Sequence[int]]
"""The processes a stream should monitor now (see :meth:`Backend.stream`)."""


@attrs.frozen
class TargetAdded:
    """A stream appended target ``index``, the process ``pid``, to its running kdamond."""

    index: int
    pid: int


StreamRecord = Union["Record", TargetAdded]
"""What :meth:`Backend.stream` yields."""


@attrs.frozen
class Refreshed:
    """What ``kdamon status --refresh`` asked the kernel for, for a kdamond kdamon started.

    Per scheme: the effective size quota (``update_schemes_effective_quotas``,
    6.9+) and the regions it tried at its last application (count and bytes,
    ``update_schemes_tried_regions``); the intervals the kernel tuned them to
    (``update_tuned_intervals``, 6.15+).  ``None`` where the kernel cannot say;
    ``notes`` say why.
    """

    effective_quota_bytes: tuple[int | None, ...] = ()
    tried: tuple[tuple[int, int] | None, ...] = ()
    tuned_intervals: tuple[int, int] | None = None
    notes: tuple[str, ...] = ()


@attrs.frozen
class KdamondStatus:
    """One kdamond as ``kdamon status`` shows it (read without writing anything).

    ``kdamond`` is the configuration (None if it could not be read, see
    ``note``, or if there is none); ``stats`` each scheme's counters as the
    backend last published them; ``unreadable`` what could not be read
    (``"configuration"``, ``"scheme stats"``).
    """

    id: KdamondId
    owner: Owner
    running: bool
    pid: int | None
    kdamond: Kdamond | None = None
    stats: tuple[SchemeStats, ...] = ()
    note: str = ""
    refreshed: Refreshed | None = None
    unreadable: tuple[str, ...] = ()


@attrs.frozen
class MonitorRequest:
    """What a command needs from a backend: a kdamond to run, whether its
    snapshots must be streamed (``kdamon record``), and whether kdamon's engine,
    if it runs the kdamond, may only count the schemes whose action it cannot
    apply (``--engine-stat-only``; refused otherwise)."""

    kdamond: Kdamond
    stream: bool = False
    engine_stat_only: bool = False

    @property
    def ops(self) -> str:
        contexts = self.kdamond.contexts
        return contexts[0].ops if contexts else "vaddr"


class Backend(Protocol):
    """A place where kdamonds run: kernel DAMON (sysfs, debugfs) or the engine."""

    name: BackendName

    def start(self, kdamond: Kdamond) -> tuple[KdamondId, int | None]:
        """Start a kdamond; returns its id and the pid of the thread or process running it."""
        ...

    def stop(self, kid: KdamondId) -> None:
        """Stop a kdamond kdamon started (``OwnershipError`` for any other)."""
        ...

    def configuration(self, kid: KdamondId) -> Kdamond:
        """The configuration a kdamond kdamon started runs with."""
        ...

    def tune(self, kid: KdamondId, kdamond: Kdamond) -> None:
        """Commit a new configuration to a running kdamond kdamon started."""
        ...

    def status(self) -> list[KdamondStatus]:
        """Every kdamond of this backend; reads only."""
        ...

    def stream(
        self, kdamond: Kdamond, until: Callable[[], bool], targets: WantedPids | None = None
    ) -> Generator[StreamRecord, None, None]:
        """Run ``kdamond`` until ``until()`` is true or its targets exit, yielding each
        target's snapshot at every aggregation (and, from kernel DAMON, the scheme
        applications and interval tunes it traced); cleans up when closed.

        ``targets``, polled while it runs, names the processes to monitor: a pid
        that is not a target yet is appended to the running kdamond as the next
        target and announced by a :class:`TargetAdded` before its snapshots.
        Targets are never removed or reordered (a process that exits stays a
        target, seen idle); one that is gone before it could be added is left out.
        """
        ...
