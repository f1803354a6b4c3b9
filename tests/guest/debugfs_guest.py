"""Helpers of the debugfs guest tests: a small hot/cold workload and a DAMON reset."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from kdamon.testing.guest import in_guest
from kdamon.testing.raw_sysfs import ADMIN, raw_write, stop_kdamonds
from kdamon.testing.workloads import Layout, start

DEBUGFS = Path("/sys/kernel/debug/damon")
# Checked only inside the guest: the host's debugfs is not ours to look at.
HAS_DEBUGFS = in_guest() and (DEBUGFS / "kdamond_pid").exists()
HAS_SYSFS = in_guest() and (ADMIN / "kdamonds").exists()
needs_debugfs = pytest.mark.skipif(
    not HAS_DEBUGFS, reason="no DAMON debugfs interface (<debugfs>/damon) in this kernel: run on linux-6.1-dbgfs"
)

HOT_BYTES = 1 << 20
COLD_BYTES = 32 << 20


@contextmanager
def hot_cold_workload() -> Iterator[Layout]:
    """A process writing a hot 1 MiB area and never its cold 32 MiB one; killed and reaped on exit."""
    with start("hot_cold", sizes=(HOT_BYTES, COLD_BYTES)) as workload:
        yield workload.layout


def _try_write(path: Path, text: str) -> None:
    try:
        raw_write(path, text)
    except OSError:
        pass  # already in the wanted state


def reset_damon() -> None:
    """Stop every DAMON context (debugfs and sysfs) and remove what the tests made."""
    for monitor in ("monitor_on", "monitor_on_DEPRECATED"):
        if (DEBUGFS / monitor).exists():
            _try_write(DEBUGFS / monitor, "off")
    if HAS_SYSFS:
        stop_kdamonds()
    for d in DEBUGFS.iterdir():
        if d.is_dir():
            _try_write(DEBUGFS / "rm_contexts", d.name)
    for name in ("target_ids", "init_regions", "schemes"):
        _try_write(DEBUGFS / name, "\n")
    _try_write(DEBUGFS / "attrs", "5000 100000 60000000 10 1000\n")
