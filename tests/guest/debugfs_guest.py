"""Helpers of the debugfs guest tests: a hot/cold workload and a DAMON reset."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs
import pytest

from kdamon.testing.guest import in_guest
from kdamon.testing.raw_sysfs import raw_write

DEBUGFS = Path("/sys/kernel/debug/damon")
SYSFS = Path("/sys/kernel/mm/damon/admin")
# Checked only inside the guest: the host's debugfs is not ours to look at.
HAS_DEBUGFS = in_guest() and (DEBUGFS / "kdamond_pid").exists()
HAS_SYSFS = in_guest() and (SYSFS / "kdamonds").exists()
needs_debugfs = pytest.mark.skipif(
    not HAS_DEBUGFS, reason="no DAMON debugfs interface (<debugfs>/damon) in this kernel: run on linux-6.1-dbgfs"
)

HOT_BYTES = 1 << 20
COLD_BYTES = 32 << 20
# Touches every page of both buffers once, reports their addresses, then keeps
# touching the hot one.  Private anonymous memory, as DAMON's vaddr expects.
_WORKLOAD = f"""
import ctypes, mmap, sys
flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
hot, cold = mmap.mmap(-1, {HOT_BYTES}, flags=flags), mmap.mmap(-1, {COLD_BYTES}, flags=flags)
for m in (hot, cold):
    for i in range(0, len(m), 4096):
        m[i] = 1
start = lambda m: ctypes.addressof(ctypes.c_char.from_buffer(m))
print(start(hot), start(hot) + len(hot), start(cold), start(cold) + len(cold), flush=True)
n = 0
while True:
    n = (n + 1) & 0xFF
    for i in range(0, len(hot), 4096):
        hot[i] = n
"""


@attrs.frozen
class Workload:
    pid: int
    hot: tuple[int, int]
    cold: tuple[int, int]


@contextmanager
def hot_cold_workload() -> Iterator[Workload]:
    """A process with a hot and a cold buffer; killed and reaped on exit."""
    proc = subprocess.Popen([sys.executable, "-c", _WORKLOAD], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        hot_start, hot_end, cold_start, cold_end = map(int, line.split())
        yield Workload(proc.pid, (hot_start, hot_end), (cold_start, cold_end))
    finally:
        proc.kill()
        proc.wait()



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
    nr_kdamonds = SYSFS / "kdamonds" / "nr_kdamonds"
    if nr_kdamonds.exists():
        for i in range(int(nr_kdamonds.read_text())):
            _try_write(SYSFS / "kdamonds" / str(i) / "state", "off")
        _try_write(nr_kdamonds, "0")
    for d in DEBUGFS.iterdir():
        if d.is_dir():
            _try_write(DEBUGFS / "rm_contexts", d.name)
    for name in ("target_ids", "init_regions", "schemes"):
        _try_write(DEBUGFS / name, "\n")
    _try_write(DEBUGFS / "attrs", "5000 100000 60000000 10 1000\n")
