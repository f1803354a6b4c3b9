"""Raw sysfs writes for guest tests: how another tool (not kdamon) drives DAMON.

Only for a kdamon guest (:func:`kdamon.testing.guest.in_guest`) or a DAMON under test (``kdamon
check``): :func:`stop_kdamonds` stops and removes every kdamond of a sysfs tree, :func:`reset_damon`
every kdamond and DAMON module of the machine.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

__all__ = ["ADMIN", "KDAMONDS", "MODULES", "raw_write", "reset_damon", "stop_kdamonds"]

ADMIN = Path("/sys/kernel/mm/damon/admin")
KDAMONDS = ADMIN / "kdamonds"
MODULES = Path("/sys/module")


def raw_write(path: Path, value: str) -> None:
    """One ``write(2)`` of ``value``, as the kernel wants it; raises OSError."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def stop_kdamonds(admin: Path = ADMIN) -> None:
    """Turn every kdamond of the sysfs tree at ``admin`` off and remove their directories."""
    kdamonds = admin / "kdamonds"
    nr = int((kdamonds / "nr_kdamonds").read_text())
    for i in range(nr):
        if (kdamonds / str(i) / "state").read_text().strip() == "on":
            try:
                raw_write(kdamonds / str(i) / "state", "off")
            except OSError as exc:
                if exc.errno != errno.EPERM:  # a kdamond that stopped by itself meanwhile
                    raise
    if nr:
        raw_write(kdamonds / "nr_kdamonds", "0")


def reset_damon() -> None:
    """Leave DAMON sysfs empty and the DAMON modules off (the guest is the test's own)."""
    for name in ("damon_reclaim", "damon_lru_sort", "damon_stat"):
        enabled = MODULES / name / "parameters" / "enabled"
        if enabled.exists() and enabled.read_text().strip() == "Y":
            raw_write(enabled, "N")
    stop_kdamonds()
