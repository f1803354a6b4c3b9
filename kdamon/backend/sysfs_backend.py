"""Kernel DAMON (sysfs, or legacy debugfs) behind the Monitor API, with tracefs for streaming."""

from __future__ import annotations

import abc
from collections.abc import Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from kdamon.backend.host import Host
from kdamon.backend.types import BackendName, KdamondId, KdamondStatus, Owner
from kdamon.errors import FeatureMissingError, KdamonError, KernelError
from kdamon.kernel.ownership import Claim, KdamondView
from kdamon.model import Kdamond, SchemeStats

if TYPE_CHECKING:
    from kdamon.model.snapshot import Snapshot

__all__ = ["DebugfsBackend", "KernelDriver", "SysfsBackend"]

_OWNERS: dict[Claim, Owner] = {Claim.OWNED: "kdamon", Claim.FREE: "free", Claim.FOREIGN: "foreign"}


class KernelDriver(Protocol):
    """What the sysfs and debugfs drivers have in common."""

    def available(self) -> bool: ...
    def nr_kdamonds(self) -> int: ...
    def state(self, index: int) -> str: ...
    def view(self, index: int) -> KdamondView: ...
    def claim(self, index: int) -> Claim: ...
    def read(self, index: int) -> Kdamond: ...
    def scheme_stats(self, index: int) -> list[SchemeStats]: ...
    def launch(self, kdamond: Kdamond) -> tuple[int, int]: ...
    def stop(self, index: int) -> bool: ...
    def release(self, index: int) -> None: ...


class _KernelBackend(abc.ABC):
    """Kdamonds of one kernel DAMON interface at ``root``."""

    name: BackendName

    def __init__(self, host: Host, driver: KernelDriver, root: Path) -> None:
        self.host = host
        self.driver = driver
        self.root = root

    def _index(self, kid: KdamondId) -> int:
        if kid.backend != self.name:
            raise KernelError(f"{kid} is not a {self.name} kdamond")
        if not self.driver.available():
            raise FeatureMissingError(f"this kernel has no DAMON {self.name} interface at {self.root}, "
                                      f"so there is no {kid}; `kdamon status` lists the kdamonds")
        return int(kid.key)

    def start(self, kdamond: Kdamond) -> tuple[KdamondId, int | None]:
        index, pid = self.driver.launch(kdamond)
        return KdamondId(self.name, str(index)), pid

    def stop(self, kid: KdamondId) -> None:
        """Stop the kdamond and unconfigure its directory, so that it is free again."""
        index = self._index(kid)
        self.driver.stop(index)
        self.driver.release(index)

    def configuration(self, kid: KdamondId) -> Kdamond:
        index = self._index(kid)
        if index >= self.driver.nr_kdamonds():
            raise KernelError(f"there is no kdamond {kid}; `kdamon status` lists them")
        return self.driver.read(index)

    @abc.abstractmethod
    def tune(self, kid: KdamondId, kdamond: Kdamond) -> None:
        """Commit ``kdamond`` to the running kdamond ``kid``."""

    # -- reads ------------------------------------------------------------
    def status(self) -> list[KdamondStatus]:
        if not self.driver.available():
            return []
        return [self._status(index) for index in range(self.driver.nr_kdamonds())]

    def _status(self, index: int) -> KdamondStatus:
        kid = KdamondId(self.name, str(index))
        view = self.driver.view(index)
        owner = _OWNERS[self.driver.claim(index)]
        if not view.configured:
            return KdamondStatus(kid, owner, view.running, view.pid, note="not configured")
        notes = []
        kdamond: Kdamond | None = None
        try:
            kdamond = self.driver.read(index)
        except KdamonError as error:
            notes.append(f"configuration unreadable: {error}")
        try:
            stats = tuple(self.driver.scheme_stats(index))
        except KdamonError as error:
            stats = ()
            notes.append(f"scheme stats unreadable: {error}")
        if stats:
            notes.append(self._stats_note(kdamond))
        return KdamondStatus(kid, owner, view.running, view.pid, kdamond, stats, "; ".join(notes))

    @abc.abstractmethod
    def _stats_note(self, kdamond: Kdamond | None) -> str:
        """How fresh the scheme stats shown by ``status`` are."""

    # -- streaming ----------------------------------------------------------
    def stream(self, kdamond: Kdamond, until: Callable[[], bool]) -> Generator[Snapshot, None, None]:
        from kdamon.kernel.tracefs import TraceSession
        from kdamon.model.snapshot import Snapshot

        root = self.host.tracefs_root()
        if root is None:
            raise FeatureMissingError("recording from kernel DAMON needs tracefs, which is not mounted: "
                                      "mount it (mount -t tracefs nodev /sys/kernel/tracing) or use "
                                      "--backend engine")
        intervals = kdamond.contexts[0].intervals
        index, pid = self.driver.launch(kdamond)
        try:
            session = TraceSession(pid, kdamond_idx=index, sample_us=intervals.sample_us,
                                   aggr_us=intervals.aggr_us, root=root, io=self.host.io)

            def finished() -> bool:
                return until() or self.driver.state(index) != "on"

            with session:
                for record in session.records(finished):
                    if isinstance(record, Snapshot):
                        yield record
        finally:
            self.driver.stop(index)
            self.driver.release(index)


class SysfsBackend(_KernelBackend):
    """Kdamonds of ``/sys/kernel/mm/damon/admin`` (``host.paths.sysfs_root``)."""

    name: BackendName = "sysfs"

    def __init__(self, host: Host) -> None:
        super().__init__(host, host.sysfs, host.paths.sysfs_root)
        self.sysfs = host.sysfs

    def tune(self, kid: KdamondId, kdamond: Kdamond) -> None:
        self.sysfs.commit(self._index(kid), kdamond)

    def _stats_note(self, kdamond: Kdamond | None) -> str:
        refresh = kdamond.refresh_ms if kdamond is not None else 0
        if refresh:
            return f"stats refreshed by the kernel every {refresh} ms"
        return "stats as last copied by update_schemes_stats"


class DebugfsBackend(_KernelBackend):
    """Contexts of the legacy debugfs interface (Linux 5.15 to 6.13), one kdamond each."""

    name: BackendName = "debugfs"

    def __init__(self, host: Host) -> None:
        super().__init__(host, host.debugfs, host.paths.debugfs_root)
        self.debugfs = host.debugfs

    def status(self) -> list[KdamondStatus]:
        """Contexts that run or hold a configuration: the root context always exists,
        so an empty idle one is no kdamond (``kdamon status`` would list it on every 6.1 host)."""
        return [s for s in super().status() if s.owner != "free"]

    def tune(self, kid: KdamondId, kdamond: Kdamond) -> None:
        """debugfs has no online commit: stop, write the new files, start again."""
        index = self._index(kid)
        self.debugfs.stop(index)
        self.debugfs.start(self.debugfs.apply(index, kdamond))

    def _stats_note(self, kdamond: Kdamond | None) -> str:
        return "debugfs stats are live"
