"""DAMON's in-kernel exclusive users: DAMON_STAT, DAMON_RECLAIM, DAMON_LRU_SORT.

While one of them runs, a sysfs kdamond cannot start (``on`` fails with EBUSY)
and vice versa.  kdamon only reports them; it never disables one unless the
user explicitly asks through ``write_parameter``.
"""

from __future__ import annotations

import errno
from pathlib import Path

import attrs

from kdamon.errors import BusyError, KernelError
from kdamon.kernel.sysfs_io import SysfsIO, Value

__all__ = ["DAMON_MODULES", "DamonModules", "ModuleStatus"]

DAMON_MODULES = ("damon_stat", "damon_reclaim", "damon_lru_sort")
_TITLES = {"damon_stat": "DAMON_STAT", "damon_reclaim": "DAMON_RECLAIM", "damon_lru_sort": "DAMON_LRU_SORT"}


@attrs.frozen
class ModuleStatus:
    """One DAMON module as seen in ``/sys/module/<name>/parameters``."""

    name: str
    enabled: bool
    kdamond_pid: int | None  # None while not running (the file reads -1) or absent

    @property
    def title(self) -> str:
        return _TITLES.get(self.name, self.name)


class DamonModules:
    """Reads (and, on explicit request, writes) DAMON module parameters under ``root``."""

    def __init__(self, root: Path = Path("/sys/module"), io: SysfsIO | None = None) -> None:
        self.root = root
        self._io = io if io is not None else SysfsIO()

    def _params(self, name: str) -> Path:
        if name not in DAMON_MODULES:
            raise KernelError(f"{name!r} is not a DAMON module; choose one of {', '.join(DAMON_MODULES)}")
        return self.root / name / "parameters"

    def present(self) -> list[str]:
        """The DAMON modules this kernel has (built in or loaded)."""
        return [n for n in DAMON_MODULES if self._io.exists(self._params(n))]

    def status(self, name: str) -> ModuleStatus | None:
        """The module's state, or None if the kernel does not have it."""
        params = self._params(name)
        if not self._io.exists(params / "enabled"):
            return None
        pid: int | None = None
        if self._io.exists(params / "kdamond_pid"):
            pid = self._io.read_int(params / "kdamond_pid")
        return ModuleStatus(
            name=name,
            enabled=self._io.read_bool(params / "enabled"),
            kdamond_pid=pid if pid is not None and pid > 0 else None,
        )

    def running(self) -> list[ModuleStatus]:
        """Modules that are enabled (and so hold DAMON exclusively)."""
        return [s for n in self.present() if (s := self.status(n)) is not None and s.enabled]

    def parameters(self, name: str) -> dict[str, str]:
        """Every readable parameter of the module, by name."""
        params = self._params(name)
        return {p: self._io.read_str(params / p) for p in sorted(self._io.listdir(params))}

    def read_parameter(self, name: str, parameter: str) -> str:
        return self._io.read_str(self._params(name) / parameter)

    def write_parameter(self, name: str, parameter: str, value: Value) -> None:
        """Set one parameter.  Only for an explicit user request (``kdamon module``)."""
        self._io.write(self._params(name) / parameter, value)

    def busy_reason(self) -> BusyError | None:
        """A BusyError naming the running exclusive module, if one explains an EBUSY."""
        running = self.running()
        if not running:
            return None
        parts = []
        for mod in running:
            pid = f"kdamond pid {mod.kdamond_pid}" if mod.kdamond_pid else "its kdamond"
            parts.append(
                f"{mod.title} is enabled and runs {pid}, holding DAMON exclusively, so a sysfs "
                f"kdamond cannot start. kdamon will not disable it for you: to free DAMON run "
                f"`echo N > {self._params(mod.name) / 'enabled'}` (or boot with "
                f"{mod.name}.enabled=N), then retry"
            )
        first = self._params(running[0].name) / "enabled"
        return BusyError("; ".join(parts), path=str(first), errno=errno.EBUSY)
