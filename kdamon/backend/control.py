"""Operations across backends: every kdamond's status, and finding the backend of an id."""

from __future__ import annotations

from kdamon.backend.engine_backend import EngineBackend
from kdamon.backend.host import Host
from kdamon.backend.sysfs_backend import DebugfsBackend, SysfsBackend
from kdamon.backend.types import Backend, KdamondId, KdamondStatus
from kdamon.errors import OwnershipError

__all__ = ["backend_of", "collect_status", "module_status", "owned_ids"]


def module_status(host: Host) -> list[KdamondStatus]:
    """The kdamonds of enabled DAMON modules (never kdamon's)."""
    out = []
    for name in host.modules.present():
        status = host.modules.status(name)
        if status is None or not status.enabled:
            continue
        short = name.removeprefix("damon_")
        out.append(
            KdamondStatus(
                KdamondId("module", name),
                "foreign",
                status.kdamond_pid is not None,
                status.kdamond_pid,
                note=f"{status.title} module's kdamond; see `kdamon module {short} status`",
            )
        )
    return out


def collect_status(host: Host, *, refresh: bool = False) -> list[KdamondStatus]:
    """Every kdamond on this machine that kdamon can see: kernel DAMON's (sysfs and
    modules) and kdamon's engine daemons.  Writes nothing, unless ``refresh`` asks
    kdamon's own running sysfs kdamonds for fresh results (state keywords; never
    another tool's kdamond)."""
    debugfs = DebugfsBackend(host).status() if host.has_debugfs() else []
    return SysfsBackend(host).status(refresh=refresh) + debugfs + module_status(host) + EngineBackend(host).status()


def owned_ids(host: Host) -> list[KdamondId]:
    """The kdamonds kdamon started (running or not) that ``kdamon stop`` stops."""
    return [s.id for s in collect_status(host) if s.owner == "kdamon"]


def backend_of(kid: KdamondId, host: Host, *, engine_stat_only: bool = False) -> Backend:
    """The backend that runs ``kid``; ``OwnershipError`` for kdamonds kdamon never drives.
    ``engine_stat_only``: an engine kdamond may only count the schemes whose action
    the engine cannot apply (``--engine-stat-only``)."""
    if kid.backend == "sysfs":
        return SysfsBackend(host)
    if kid.backend == "engine":
        return EngineBackend(host, stat_only=engine_stat_only)
    if kid.backend == "debugfs":
        return DebugfsBackend(host)
    short = kid.key.removeprefix("damon_")
    raise OwnershipError(
        f"{kid} is the {kid.key} module's kdamond, not kdamon's: control it with "
        f"`kdamon module {short} enable|disable|set`"
    )
