"""Kernel DAMON (sysfs, or legacy debugfs) behind the Monitor API, with tracefs for streaming."""

from __future__ import annotations

import abc
import warnings
from collections.abc import Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from kdamon.backend.host import Host
from kdamon.backend.types import (
    BackendName,
    KdamondId,
    KdamondStatus,
    Owner,
    Refreshed,
    StreamRecord,
    TargetAdded,
    WantedPids,
)
from kdamon.errors import FeatureMissingError, KdamonError, KdamonWarning, KernelError
from kdamon.kernel.driver_core import KdamondDriver
from kdamon.kernel.ownership import Claim, KdamondView
from kdamon.model import Kdamond, TriedRegion

if TYPE_CHECKING:
    from kdamon.backend.growth import GrowingTargets

__all__ = ["DebugfsBackend", "KernelDriver", "LastResults", "SysfsBackend"]

_OWNERS: dict[Claim, Owner] = {Claim.OWNED: "kdamon", Claim.FREE: "free", Claim.FOREIGN: "foreign"}
_RESTART_ATTEMPTS = 3
_COMMIT_ATTEMPTS = 3

KernelDriver = KdamondDriver[Any]
"""The sysfs or the debugfs driver."""


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
            raise FeatureMissingError(
                f"this kernel has no DAMON {self.name} interface at {self.root}, "
                f"so there is no {kid}; `kdamon status` lists the kdamonds"
            )
        return int(kid.key)

    def start(self, kdamond: Kdamond) -> tuple[KdamondId, int | None]:
        index, pid = self.driver.launch(kdamond)
        return KdamondId(self.name, str(index)), pid

    def stop(self, kid: KdamondId) -> None:
        """Stop the kdamond and unconfigure its directory, so that it is free again.

        A directory that is free already (a repeated stop) needs nothing."""
        index = self._index(kid)
        if index < self.driver.nr_kdamonds() and self.driver.claim(index) is Claim.FREE:
            return
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
    def kdamonds(self) -> list[KdamondId]:
        """Every kdamond directory (or context) of the interface; none without it."""
        if not self.driver.available():
            return []
        return [KdamondId(self.name, str(index)) for index in range(self.driver.nr_kdamonds())]

    def status(self, *, refresh: bool = False) -> list[KdamondStatus]:
        """Every kdamond; with ``refresh``, kdamon's running ones are asked for fresh results first."""
        return [self.status_of(kid, refresh=refresh) for kid in self.kdamonds()]

    def status_of(self, kid: KdamondId, *, refresh: bool = False) -> KdamondStatus:
        """One kdamond; with ``refresh``, if it is kdamon's and runs, fresh results first."""
        index = int(kid.key)
        view = self.driver.view(index)
        claim = self.driver.claim(index, view)
        refreshed = None
        if refresh and claim is Claim.OWNED and view.running:
            refreshed = self.refresh(kid)
            view = self.driver.view(index)
        return attrs.evolve(self._status(index, view, claim), refreshed=refreshed)

    def refresh(self, kid: KdamondId) -> Refreshed:
        """Ask a running kdamond kdamon started for fresh scheme stats and what else the kernel can say."""
        raise FeatureMissingError(f"{kid}: {self.name} kdamonds have no refresh requests; their stats are live")

    def _status(self, index: int, view: KdamondView, claim: Claim) -> KdamondStatus:
        kid = KdamondId(self.name, str(index))
        owner = _OWNERS[claim]
        notes = []
        if owner == "kdamon" and self.driver.interrupted(index):
            notes.append(f"a kdamon process was killed while writing it: `kdamon stop {kid}` removes it")
        if not view.configured:
            return KdamondStatus(kid, owner, view.running, view.pid, note="; ".join([*notes, "not configured"]))
        kdamond: Kdamond | None = None
        unreadable = []
        try:
            kdamond = self.driver.read(index)
        except KdamonError as error:
            notes.append(f"configuration unreadable: {error}")
            unreadable.append("configuration")
        try:
            stats = tuple(self.driver.scheme_stats(index))
        except KdamonError as error:
            stats = ()
            notes.append(f"scheme stats unreadable: {error}")
            unreadable.append("scheme stats")
        if stats:
            notes.append(self._stats_note(kdamond, owner))
        return KdamondStatus(
            kid, owner, view.running, view.pid, kdamond, stats, "; ".join(notes), unreadable=tuple(unreadable)
        )

    @abc.abstractmethod
    def _stats_note(self, kdamond: Kdamond | None, owner: Owner) -> str:
        """How fresh the scheme stats shown by ``status`` are."""

    # -- streaming ----------------------------------------------------------
    def stream(
        self, kdamond: Kdamond, until: Callable[[], bool], targets: WantedPids | None = None
    ) -> Generator[StreamRecord, None, None]:
        """See :meth:`Backend.stream <kdamon.backend.types.Backend.stream>`: the kdamond's trace
        events, from a private tracefs instance; wanted processes are appended by
        :meth:`_append` (a commit), or by starting the kdamond again when it cannot
        take them running (said by a :class:`~kdamon.errors.KdamonWarning`)."""
        from kdamon.backend.growth import GrowingTargets
        from kdamon.kernel.tracefs import TraceSession

        root = self.host.tracefs_root()
        if root is None:
            raise FeatureMissingError(
                "recording from kernel DAMON needs tracefs, which is not mounted: "
                "mount it (mount -t tracefs nodev /sys/kernel/tracing) or use "
                "--backend engine"
            )
        intervals = kdamond.contexts[0].intervals
        growing = GrowingTargets(kdamond, targets) if targets is not None else None
        index, pid = self.driver.launch(kdamond)
        try:
            while True:
                session = TraceSession(
                    pid,
                    kdamond_idx=index,
                    sample_us=intervals.sample_us,
                    aggr_us=intervals.aggr_us,
                    root=root,
                    io=self.host.io,
                )
                added: list[TargetAdded] = []
                restart = False

                def finished() -> bool:
                    nonlocal restart
                    if until():
                        return True
                    if growing is not None:
                        appended = self._append(index, growing)
                        if appended is None:
                            restart = True
                            return True
                        added.extend(appended)  # noqa: B023  (called within this iteration only)
                    return self.driver.state(index) != "on"

                with session:
                    for record in session.records(finished):
                        yield from added
                        added.clear()
                        yield record
                    yield from added
                if not restart or growing is None:
                    return
                pid = self._restart(index, growing)
                yield from growing.committed()
        finally:
            self.driver.stop(index)
            self.driver.release(index)

    @abc.abstractmethod
    def _append(self, index: int, growing: GrowingTargets) -> list[TargetAdded] | None:
        """Append the processes ``growing`` wants to running kdamond ``index``: the targets
        appended, or None when the kdamond must be started again to take them."""

    _restart_reason: str
    """Why :meth:`_append` may need the kdamond started again (for the warning)."""

    def _restart(self, index: int, growing: GrowingTargets) -> int:
        """Start kdamond ``index`` again with every target ``growing`` has and wants; its pid."""
        self.driver.stop(index)  # (False if it ended by itself)
        attempt = 0
        while True:
            kdamond = growing.restarted()
            self.driver.apply(index, kdamond)
            try:
                pid = self.driver.start(index)
            except KernelError:  # a process exited between the check and the start: check again
                attempt += 1
                if attempt == _RESTART_ATTEMPTS:
                    raise
                continue
            warnings.warn(
                KdamonWarning(
                    f"{self.name} kdamond {index} {self._restart_reason}; it was started again with its "
                    f"{len(kdamond.contexts[0].targets)} targets in the same order, whose regions and counts "
                    "start afresh"
                ),
                stacklevel=2,
            )
            return pid


@attrs.frozen
class LastResults:
    """A scheme's result files: its effective quota (6.9+) and its last tried regions as
    ``(total_bytes, regions)`` (6.2+); None where the kernel lacks them."""

    effective_quota: int | None
    tried: tuple[int, list[TriedRegion]] | None


class SysfsBackend(_KernelBackend):
    """Kdamonds of ``/sys/kernel/mm/damon/admin`` (``host.paths.sysfs_root``)."""

    name: BackendName = "sysfs"

    def __init__(self, host: Host) -> None:
        super().__init__(host, host.sysfs, host.paths.sysfs_root)
        self.sysfs = host.sysfs

    def tune(self, kid: KdamondId, kdamond: Kdamond) -> None:
        self.sysfs.commit(self._index(kid), kdamond)

    _restart_reason = (
        "ended on a commit of new targets: one of its processes exited meanwhile, and kernels "
        "up to 6.14 end the kdamond on a commit naming a process that is gone"
    )

    def _append(self, index: int, growing: GrowingTargets) -> list[TargetAdded] | None:
        """Commit the targets with the new ones appended; a commit that fails because a process
        exited meanwhile is tried again with what runs then (Linux 6.17+ refuses it and runs on)."""
        attempt = 0
        while True:
            grown = growing.grown()
            if grown is None:
                return []
            try:
                self.sysfs.commit(index, grown)
            except KernelError:
                if self.sysfs.state(index) != "on":
                    return None
                attempt += 1
                if attempt == _COMMIT_ATTEMPTS:
                    raise
                continue
            return growing.committed()

    def tune_goals(self, kid: KdamondId, kdamond: Kdamond) -> None:
        """Commit only the schemes' quota goals of ``kdamond`` (``commit_schemes_quota_goals``)."""
        self.sysfs.commit_goals(self._index(kid), kdamond)

    def refresh(self, kid: KdamondId) -> Refreshed:
        index = self._index(kid)
        sysfs = self.sysfs
        sysfs.update_schemes_stats(index)
        schemes = range(len(sysfs.scheme_stats(index)))
        notes: list[str] = []
        quotas: tuple[int | None, ...] = tuple(None for _ in schemes)
        tried: tuple[tuple[int, int] | None, ...] = tuple(None for _ in schemes)
        intervals = None
        if schemes:
            try:
                sysfs.update_effective_quotas(index)
                quotas = tuple(sysfs.effective_quota(index, s) for s in schemes)
            except FeatureMissingError as missing:
                notes.append(str(missing))
            try:
                sysfs.update_tried_regions(index)
                tried = tuple(
                    (len(regions), total) for total, regions in (sysfs.tried_regions(index, s) for s in schemes)
                )
            except FeatureMissingError as missing:
                notes.append(str(missing))
        try:
            sysfs.update_tuned_intervals(index)
            intervals = sysfs.tuned_intervals(index)
        except FeatureMissingError:
            pass  # a kernel before 6.15: no intervals goal either, the intervals are the configured ones
        return Refreshed(quotas, tried, intervals, tuple(notes))

    def last_results(self, kid: KdamondId, scheme: int) -> LastResults:
        """What scheme ``scheme``'s result files hold now, as their owner last had them updated
        (reads only: nothing is asked of the kdamond)."""
        index = self._index(kid)
        try:
            quota: int | None = self.sysfs.effective_quota(index, scheme)
        except FeatureMissingError:  # no effective_bytes before 6.9
            quota = None
        try:
            tried: tuple[int, list[TriedRegion]] | None = self.sysfs.tried_regions(index, scheme)
        except FeatureMissingError:  # no tried_regions/ before 6.2
            tried = None
        return LastResults(quota, tried)

    def _stats_note(self, kdamond: Kdamond | None, owner: Owner) -> str:
        refresh = kdamond.refresh_ms if kdamond is not None else 0
        if refresh:
            return f"stats refreshed by the kernel every {refresh} ms"
        if owner == "kdamon":
            return "stats as last copied by update_schemes_stats (`kdamon status --refresh` copies them now)"
        return (
            "stats as last copied by update_schemes_stats at their owner's request, at a time kdamon "
            "cannot know: kdamon never asks another tool's kdamond"
        )


class DebugfsBackend(_KernelBackend):
    """Contexts of the legacy debugfs interface (Linux 5.15 to 6.13), one kdamond each."""

    name: BackendName = "debugfs"

    def __init__(self, host: Host) -> None:
        super().__init__(host, host.debugfs, host.paths.debugfs_root)
        self.debugfs = host.debugfs

    def status(self, *, refresh: bool = False) -> list[KdamondStatus]:
        """Contexts that run or hold a configuration: the root context always exists,
        so an empty idle one is no kdamond (``kdamon status`` would list it on every 6.1 host).
        Debugfs stats are live: there is nothing to refresh."""
        return [s for s in super().status() if s.owner != "free"]

    def tune(self, kid: KdamondId, kdamond: Kdamond) -> None:
        """debugfs has no online commit: stop, write the new files, start again."""
        index = self._index(kid)
        self.debugfs.stop(index)
        self.debugfs.start(self.debugfs.apply(index, kdamond))

    def _stats_note(self, kdamond: Kdamond | None, owner: Owner) -> str:
        return "debugfs stats are live"

    _restart_reason = "took new targets: debugfs has no online commit"

    def _append(self, index: int, growing: GrowingTargets) -> list[TargetAdded] | None:
        """debugfs has no online commit: new targets need a restart."""
        return [] if growing.grown() is None else None
