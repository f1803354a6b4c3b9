"""Where a machine's DAMON interfaces live, and the drivers built on them.

Every path is injectable: host tests build a :class:`Host` on temporary trees
(and may pass an emulated :class:`~kdamon.kernel.sysfs_io.RawFs`), while the
command line reads overrides from ``KDAMON_*`` environment variables
(:meth:`HostPaths.from_env`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from kdamon.kernel.debugfs import DebugfsDriver
    from kdamon.kernel.modules import DamonModules
    from kdamon.kernel.ownership import OwnershipRegistry
    from kdamon.kernel.sysfs import SysfsDriver
    from kdamon.kernel.sysfs_io import RawFs, SysfsIO

__all__ = ["ENV_VARS", "Host", "HostPaths"]

ENV_VARS = {
    "sysfs_root": "KDAMON_SYSFS_ROOT",
    "debugfs_root": "KDAMON_DEBUGFS_ROOT",
    "tracefs_root": "KDAMON_TRACEFS_ROOT",
    "module_root": "KDAMON_MODULE_ROOT",
    "state_dir": "KDAMON_STATE_DIR",
    "kernel_config": "KDAMON_KERNEL_CONFIG",
}
"""The environment variable that overrides each path of :class:`HostPaths`."""


def default_state_dir(environ: Mapping[str, str]) -> Path:
    """``/run/kdamon`` for root; a per-user runtime directory otherwise."""
    if os.geteuid() == 0:
        return Path("/run/kdamon")
    runtime = environ.get("XDG_RUNTIME_DIR")
    return Path(runtime) / "kdamon" if runtime else Path(f"/tmp/kdamon-{os.geteuid()}")


@attrs.frozen
class HostPaths:
    """The roots of DAMON's interfaces and kdamon's own state directory.

    ``tracefs_root`` None means the first mounted one of the usual places;
    ``kernel_config`` None means ``/boot/config-$(uname -r)``.
    """

    sysfs_root: Path = Path("/sys/kernel/mm/damon/admin")
    debugfs_root: Path = Path("/sys/kernel/debug/damon")
    tracefs_root: Path | None = None
    module_root: Path = Path("/sys/module")
    state_dir: Path = Path("/run/kdamon")
    kernel_config: Path | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> HostPaths:
        """The default paths, each overridden by its ``KDAMON_*`` variable when set."""
        env = os.environ if environ is None else environ
        values: dict[str, Path] = {"state_dir": default_state_dir(env)}
        for field, var in ENV_VARS.items():
            if env.get(var):
                values[field] = Path(env[var])
        return cls(**values)

    @classmethod
    def under(cls, base: Path) -> HostPaths:
        """Every root below ``base`` (for tests and dry runs)."""
        return cls(
            sysfs_root=base / "admin",
            debugfs_root=base / "debug" / "damon",
            tracefs_root=base / "tracing",
            module_root=base / "module",
            state_dir=base / "run",
            kernel_config=base / "kernel.config",
        )


class Host:
    """One machine's DAMON: the drivers, built lazily on ``paths``.

    ``fs`` replaces the system calls of every kernel file access (an emulated
    kernel in tests; EBUSY retries then do not sleep).
    """

    def __init__(self, paths: HostPaths, *, fs: RawFs | None = None) -> None:
        self.paths = paths
        self._fs = fs

    @cached_property
    def io(self) -> SysfsIO:
        from kdamon.kernel.sysfs_io import SysfsIO

        if self._fs is None:
            return SysfsIO()
        return SysfsIO(self._fs, sleep=lambda _s: None)

    @cached_property
    def owners(self) -> OwnershipRegistry:
        from kdamon.kernel.ownership import OwnershipRegistry

        return OwnershipRegistry(self.paths.state_dir)

    @cached_property
    def modules(self) -> DamonModules:
        from kdamon.kernel.modules import DamonModules

        return DamonModules(self.paths.module_root, io=self.io)

    @cached_property
    def sysfs(self) -> SysfsDriver:
        from kdamon.kernel.sysfs import SysfsDriver

        return SysfsDriver(self.paths.sysfs_root, io=self.io, owners=self.owners, modules=self.modules)

    @cached_property
    def debugfs(self) -> DebugfsDriver:
        from kdamon.kernel.debugfs import DebugfsDriver

        return DebugfsDriver(self.paths.debugfs_root, fs=self.io.fs, owners=self.owners, modules=self.modules)

    def has_debugfs(self) -> bool:
        """Whether the legacy debugfs interface exists (seen without loading its driver,
        as ``DebugfsDriver.available`` sees it)."""
        return self.io.exists(self.paths.debugfs_root / "kdamond_pid")

    @property
    def engine_dir(self) -> Path:
        """Where engine daemons keep their configuration and status."""
        return self.paths.state_dir / "engine"

    def kernel_config(self) -> dict[str, str]:
        """The running kernel's build configuration (``CONFIG_X`` -> value), empty if unknown."""
        path = self.paths.kernel_config or Path(f"/boot/config-{os.uname().release}")
        try:
            text = path.read_text(errors="replace")
        except OSError:
            return {}
        config = {}
        for line in text.splitlines():
            if line.startswith("CONFIG_"):
                key, _, value = line.partition("=")
                config[key] = value
            elif line.startswith("# CONFIG_") and line.endswith(" is not set"):
                config[line[2 : -len(" is not set")]] = "n"
        return config

    def tracefs_root(self) -> Path | None:
        """The tracefs mount to use, None if there is none."""
        from kdamon.kernel.tracefs import TRACEFS_ROOTS

        candidates = (self.paths.tracefs_root,) if self.paths.tracefs_root is not None else TRACEFS_ROOTS
        for root in candidates:
            if self.io.exists(root / "instances"):
                return root
        return None
