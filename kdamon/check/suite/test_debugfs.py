"""DAMON's debugfs interface (up to 6.13, when the kernel has it): a context starts with its schemes, exclusively.

``monitor_on`` reads "on" while any DAMON context runs; the context keeps
every scheme it was given and applies them; debugfs starts its contexts
exclusively, so a sysfs kdamond cannot start meanwhile (EBUSY,
``damon-abi.md`` 6.8); "off" stops it.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kdamon.check.emit import NOTE
from kdamon.check.harness import RawTree, calibrate
from kdamon.kernel.debugfs import DebugfsDriver
from kdamon.kernel.ownership import OwnershipRegistry
from kdamon.model import AccessPattern, Context, Kdamond, Scheme, Target
from kdamon.testing.workloads import Workload

RecordProperty = Callable[[str, object], None]
WAIT_S = 30.0


@pytest.fixture
def dbgfs(tmp_path: Path, raw: RawTree) -> Iterator[DebugfsDriver]:
    driver = DebugfsDriver(owners=OwnershipRegistry(tmp_path / "owners"))
    if not driver.available():
        pytest.skip("this kernel has no DAMON debugfs interface (CONFIG_DAMON_DBGFS; gone from 6.14)")
    raw.reset()  # debugfs starts only while no other DAMON context runs
    yield driver
    if driver.monitor_on():
        driver.fs.write(driver.monitor_path(), b"off")


def _sysfs_on_errno(raw: RawTree, pid: int) -> int:
    """The errno of starting a minimal vaddr sysfs kdamond on ``pid`` (0 if it started; it is removed again)."""
    raw.write("kdamonds/nr_kdamonds", 1)
    c = "kdamonds/0/contexts"
    raw.write(f"{c}/nr_contexts", 1)
    raw.write(f"{c}/0/targets/nr_targets", 1)
    raw.write(f"{c}/0/targets/0/pid_target", pid)
    got = raw.errno_of("kdamonds/0/state", "on")
    raw.reset()
    return got


def test_context_runs_with_its_schemes(
    dbgfs: DebugfsDriver, raw: RawTree, shared_hot_cold: Workload, record_property: RecordProperty
) -> None:
    """a debugfs context starts with all its schemes, shows in monitor_on, applies them, excludes sysfs, and stops"""
    layout = shared_hot_cold.layout
    schemes = (Scheme(), Scheme(access_pattern=AccessPattern(nr_accesses_max=0)))
    context = Context(intervals=calibrate(layout).intervals, targets=(Target(pid=layout.pid),), schemes=schemes)
    index, pid = dbgfs.launch(Kdamond(contexts=(context,)))
    try:
        on = dbgfs.monitor_on()
        kept = len(dbgfs.read(index).contexts[0].schemes)
        busy = _sysfs_on_errno(raw, layout.pid)
        deadline = time.monotonic() + WAIT_S
        while not all(s.nr_tried > 0 for s in dbgfs.scheme_stats(index)) and time.monotonic() < deadline:
            time.sleep(0.2)
        tried = [s.nr_tried for s in dbgfs.scheme_stats(index)]
    finally:
        dbgfs.stop(index)
        dbgfs.release(index)
    off = dbgfs.monitor_on()
    record_property(
        NOTE,
        f"kdamond {pid}; monitor_on {'on' if on else 'off'} while running, "
        f"{'on' if off else 'off'} after; {kept} schemes read back; nr_tried {tried}; sysfs 'on' "
        f"meanwhile: {errno.errorcode.get(busy, busy)}",
    )
    assert on, "monitor_on read off while the debugfs context ran"
    assert kept == len(schemes), f"the context kept {kept} of its {len(schemes)} schemes"
    assert busy == errno.EBUSY, f"a sysfs kdamond started with errno {busy} while a debugfs context ran (want EBUSY)"
    assert len(tried) == len(schemes) and all(t > 0 for t in tried), f"schemes were not all applied: nr_tried {tried}"
    assert not off, "monitor_on still reads on after 'off'"
