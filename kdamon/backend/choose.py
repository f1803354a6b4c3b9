"""Which backend runs a request, and why.

``auto`` takes kernel DAMON when it can monitor the request without
disturbing anyone, else kdamon's engine.  The probe only reads: it never
writes a DAMON file, never creates a kdamond directory to look at
``avail_operations``, and never rewrites ``nr_kdamonds``.  Kernel DAMON is
usable when

* the DAMON sysfs interface exists and kdamon may write it;
* no exclusive DAMON user (DAMON_STAT, DAMON_RECLAIM, DAMON_LRU_SORT) runs;
* the kernel offers the request's operations set (``avail_operations`` of an
  existing kdamond directory, else the kernel's build configuration);
* a kdamond can be had without touching another: a stopped directory that
  is kdamon's or free, or a new one, which needs ``nr_kdamonds`` rewritten,
  which the kernel refuses while any kdamond runs and which would wipe any
  other tool's stopped configuration;
* for recording, tracefs with DAMON's trace events.

Without the sysfs interface, the legacy debugfs one (Linux 5.15 to 6.13) is
used when no DAMON context runs and every debugfs context is kdamon's or
free (debugfs starts and stops all its contexts at once).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from kdamon.backend.host import Host
from kdamon.backend.sysfs_backend import DebugfsBackend, SysfsBackend
from kdamon.backend.types import Backend, MonitorRequest
from kdamon.errors import ConfigError, FeatureMissingError
from kdamon.kernel.ownership import Claim

if TYPE_CHECKING:
    from kdamon.backend.engine_backend import EngineBackend

__all__ = ["PREFERENCES", "Preference", "choose_backend", "debugfs_verdict", "kernel_verdict"]

Preference = Literal["auto", "sysfs", "debugfs", "engine"]
PREFERENCES: tuple[Preference, ...] = ("auto", "sysfs", "debugfs", "engine")

_OPS_KCONFIG = {"vaddr": "CONFIG_DAMON_VADDR", "fvaddr": "CONFIG_DAMON_VADDR", "paddr": "CONFIG_DAMON_PADDR"}


def kernel_verdict(request: MonitorRequest, host: Host) -> str | None:
    """Why kernel DAMON (sysfs) cannot serve ``request`` here; None if it can.  Reads only."""
    driver = host.sysfs
    if not driver.available():
        return f"this kernel has no DAMON sysfs interface at {host.paths.sysfs_root}"
    unwritable = driver.unwritable()
    if unwritable is not None:
        return f"driving kernel DAMON needs write access to {unwritable} (run kdamon as root)"
    busy = driver.modules.running()
    if busy:
        return "; ".join(f"{m.title} is enabled and holds DAMON exclusively" for m in busy)
    ops = request.ops
    avail = driver.avail_operations()
    if avail is not None and ops not in avail:
        return f"kernel DAMON offers only {', '.join(avail) or 'no operations set'} here, not {ops}"
    if avail is None and host.kernel_config().get(_OPS_KCONFIG[ops], "y") == "n":
        return f"this kernel is built without {_OPS_KCONFIG[ops]}, so kernel DAMON cannot monitor {ops}"
    slot = driver.free_slot()
    if slot.why_not is not None:
        return slot.why_not
    return _stream_verdict(host) if request.stream else None


def _stream_verdict(host: Host) -> str | None:
    root = host.tracefs_root()
    if root is None:
        return "recording reads DAMON's trace events, and no tracefs is mounted"
    if not host.io.exists(root / "events" / "damon" / "damon_aggregated"):
        return f"recording reads DAMON's trace events, which {root} lacks"
    return None


def debugfs_verdict(request: MonitorRequest, host: Host) -> str | None:
    """Why legacy debugfs DAMON cannot serve ``request`` here; None if it can.  Reads only."""
    driver = host.debugfs
    if not driver.available():
        return f"this kernel has no DAMON debugfs interface at {host.paths.debugfs_root}"
    if request.ops == "fvaddr":
        return "the debugfs interface has no fvaddr"
    busy = driver.modules.running()
    if busy:
        return "; ".join(f"{m.title} is enabled and holds DAMON exclusively" for m in busy)
    if driver.monitor_on():
        return "a DAMON context already runs, and debugfs starts its contexts only while none does"
    for index in range(driver.nr_kdamonds()):
        if driver.claim(index) is Claim.FOREIGN:
            return (
                f"debugfs context {index} holds another tool's configuration, and debugfs starts "
                "and stops every context at once"
            )
    return _stream_verdict(host) if request.stream else None


def _engine(host: Host, request: MonitorRequest, because: str = "") -> EngineBackend:
    from kdamon.backend.engine_backend import EngineBackend  # the engine's modules load only when it runs

    return EngineBackend(host, stat_only=request.engine_stat_only, chosen_because=because)


def choose_backend(request: MonitorRequest, prefer: str = "auto", *, host: Host) -> tuple[Backend, str]:
    """The backend for ``request`` and a sentence saying why (shown to the user)."""
    if prefer == "engine":
        return _engine(host, request), "kdamon's engine, as --backend engine asks"
    if prefer == "sysfs":
        if not host.sysfs.available():
            raise FeatureMissingError(
                f"--backend sysfs: this kernel has no DAMON sysfs interface at "
                f"{host.paths.sysfs_root}; use --backend auto or engine"
            )
        return SysfsBackend(host), "kernel DAMON through sysfs, as --backend sysfs asks"
    if prefer == "debugfs":
        if not host.debugfs.available():
            raise FeatureMissingError(
                f"--backend debugfs: this kernel has no DAMON debugfs interface at "
                f"{host.paths.debugfs_root} (Linux 5.15 to 6.13 with CONFIG_DAMON_DBGFS); "
                "use --backend auto, sysfs or engine"
            )
        return DebugfsBackend(host), "kernel DAMON through debugfs, as --backend debugfs asks"
    if prefer != "auto":
        raise ConfigError("--backend", f"unknown backend {prefer!r}; use one of {', '.join(PREFERENCES)}")
    verdict = kernel_verdict(request, host)
    if verdict is None:
        return SysfsBackend(host), (f"kernel DAMON through sysfs: it offers {request.ops} and a kdamond is free to use")
    if not host.sysfs.available() and host.has_debugfs():
        legacy = debugfs_verdict(request, host)
        if legacy is None:
            return DebugfsBackend(
                host
            ), "kernel DAMON through its legacy debugfs interface: this kernel has no sysfs one"
        verdict = f"{verdict}, and in debugfs {legacy}"
    return _engine(host, request, verdict), f"kdamon's engine, because {verdict}"
