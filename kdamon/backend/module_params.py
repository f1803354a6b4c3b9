"""The parameters of the kernel's DAMON modules, typed and validated.

``/sys/module/damon_<name>/parameters/`` holds the knobs of DAMON_STAT,
DAMON_RECLAIM and DAMON_LRU_SORT.  Which files exist depends on the kernel;
kdamon accepts exactly the ones present, types the ones it knows (booleans,
durations, sizes, ratios) and treats the rest as unsigned integers.
Statistics and ``kdamond_pid`` are read-only.
"""

from __future__ import annotations

from typing import Literal

import attrs

from kdamon.backend.host import Host
from kdamon.errors import BusyError, ConfigError, KernelError
from kdamon.model import parse_duration_ms, parse_duration_us, parse_ratio_bp, parse_ratio_permil, parse_size

__all__ = ["MODULES", "ModuleParams", "Parameter", "module_name"]

Kind = Literal["bool", "int", "us", "ms", "bytes", "permil", "bp", "read-only"]

MODULES = ("stat", "reclaim", "lru_sort")
_COMMON: dict[str, Kind] = {
    "enabled": "bool",
    "commit_inputs": "bool",
    "quota_ms": "ms",
    "quota_reset_interval_ms": "ms",
    "wmarks_interval": "us",
    "wmarks_high": "permil",
    "wmarks_mid": "permil",
    "wmarks_low": "permil",
    "sample_interval": "us",
    "aggr_interval": "us",
    "min_nr_regions": "int",
    "max_nr_regions": "int",
    "monitor_region_start": "int",
    "monitor_region_end": "int",
    "addr_unit": "int",
    "kdamond_pid": "read-only",
}
_KINDS: dict[str, dict[str, Kind]] = {
    "damon_reclaim": _COMMON
    | {
        "min_age": "us",
        "quota_sz": "bytes",
        "quota_mem_pressure_us": "us",
        "quota_autotune_feedback": "int",
        "skip_anon": "bool",
    },
    "damon_lru_sort": _COMMON
    | {
        "hot_thres_access_freq": "permil",
        "cold_min_age": "us",
        "active_mem_bp": "bp",
        "autotune_monitoring_intervals": "bool",
        "filter_young_pages": "bool",
    },
    "damon_stat": {
        "enabled": "bool",
        "kdamond_pid": "read-only",
        "estimated_memory_bandwidth": "read-only",
        "memory_idle_ms_percentiles": "read-only",
    },
}
_TRUE = ("y", "yes", "true", "on", "1")
_FALSE = ("n", "no", "false", "off", "0")


def module_name(short: str) -> str:
    """``reclaim`` -> ``damon_reclaim``."""
    if short not in MODULES:
        raise ConfigError("MODULE", f"unknown DAMON module {short!r}; use one of {', '.join(MODULES)}")
    return f"damon_{short}"


@attrs.frozen
class Parameter:
    name: str
    value: str
    kind: Kind


def _kind(module: str, name: str) -> Kind:
    known = _KINDS.get(module, {}).get(name)
    if known is not None:
        return known
    return "read-only" if name.startswith(("nr_", "bytes_")) else "int"


def _encode(name: str, kind: Kind, text: str) -> str:
    """The text to write for ``name=text``, validated."""
    if kind == "bool":
        if text.lower() in _TRUE:
            return "Y"
        if text.lower() in _FALSE:
            return "N"
        raise ConfigError(name, f"expected Y or N, got {text!r}")
    if kind == "int":
        try:
            value = int(text, 0)
        except ValueError:
            raise ConfigError(name, f"expected a non-negative integer, got {text!r}") from None
        if value < 0:
            raise ConfigError(name, f"expected a non-negative integer, got {text!r}")
        return str(value)
    parsers = {
        "us": parse_duration_us,
        "ms": parse_duration_ms,
        "bytes": parse_size,
        "permil": parse_ratio_permil,
        "bp": parse_ratio_bp,
    }
    return str(parsers[kind](text, name))


class ModuleParams:
    """One DAMON module's parameters on ``host``."""

    def __init__(self, host: Host, short: str) -> None:
        self.host = host
        self.name = module_name(short)
        self.short = short

    def present(self) -> bool:
        return self.name in self.host.modules.present()

    def _require(self) -> None:
        if not self.present():
            raise KernelError(
                f"this kernel has no {self.name} module "
                f"({self.host.paths.module_root / self.name / 'parameters'} is missing): "
                f"it needs CONFIG_DAMON_{self.short.upper()}"
            )

    def read(self) -> list[Parameter]:
        """Every parameter with its current value (reads only)."""
        self._require()
        values = self.host.modules.parameters(self.name)
        return [Parameter(name, value, _kind(self.name, name)) for name, value in values.items()]

    def enabled(self) -> bool:
        status = self.host.modules.status(self.name)
        return status is not None and status.enabled

    def validate(self, assignments: list[str]) -> list[tuple[str, str]]:
        """``KEY=VALUE`` items as (parameter, text to write); every item checked before any write."""
        self._require()
        present = set(self.host.modules.parameters(self.name))
        writable = sorted(n for n in present if _kind(self.name, n) != "read-only")
        out = []
        for item in assignments:
            name, sep, text = item.partition("=")
            if not sep:
                raise ConfigError(item, "use KEY=VALUE")
            if name not in present:
                raise ConfigError(
                    name, f"{self.name} has no such parameter here; its writable ones are {', '.join(writable)}"
                )
            kind = _kind(self.name, name)
            if kind == "read-only":
                raise ConfigError(name, f"is read-only (a statistic); writable ones are {', '.join(writable)}")
            if name == "enabled":
                raise ConfigError(name, f"use `kdamon module {self.short} enable|disable` to turn it on or off")
            out.append((name, _encode(name, kind, text.strip())))
        return out

    def write(self, values: list[tuple[str, str]]) -> bool:
        """Write validated values; if the module runs, ``commit_inputs=Y`` applies them.
        Returns whether they were committed to a running kdamond."""
        for name, text in values:
            self.host.modules.write_parameter(self.name, name, text)
        if self.enabled() and "commit_inputs" in self.host.modules.parameters(self.name):
            self.host.modules.write_parameter(self.name, "commit_inputs", "Y")
            return True
        return False

    def set_enabled(self, on: bool) -> None:
        """Turn the module on or off: only ever on the user's explicit request."""
        self._require()
        try:
            self.host.modules.write_parameter(self.name, "enabled", "Y" if on else "N")
        except BusyError as error:
            raise BusyError(
                f"{self.name} could not be {'enabled' if on else 'disabled'}: DAMON is busy "
                "(EBUSY); DAMON modules run exclusively, so another DAMON user (a sysfs "
                "kdamond or another module, see `kdamon status`) must stop first",
                path=error.path,
                errno=error.errno,
            ) from error
