"""debugfs error cases and its interplay with sysfs, on a real kernel.

Each test checks a kernel behaviour the debugfs driver relies on (with raw
writes) and what the driver makes of it.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from debugfs_guest import (
    DEBUGFS,
    HAS_SYSFS,
    hot_cold_workload,
    needs_debugfs,
    reset_damon,
)
from kdamon.errors import BusyError, KernelError
from kdamon.kernel.debugfs import DebugfsDriver
from kdamon.kernel.ownership import OwnershipRegistry
from kdamon.model import Context, Kdamond, Target
from kdamon.testing.raw_sysfs import KDAMONDS, raw_write
from kdamon.testing.workloads import Layout

pytestmark = needs_debugfs


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[DebugfsDriver]:
    reset_damon()
    yield DebugfsDriver(owners=OwnershipRegistry(tmp_path / "run"))
    reset_damon()


@pytest.fixture
def workload() -> Iterator[Layout]:
    with hot_cold_workload() as w:
        yield w


def monitor(pid: int) -> Kdamond:
    return Kdamond(contexts=(Context(targets=(Target(pid=pid),)),))


def errno_of(path: Path, text: str) -> int:
    with pytest.raises(OSError) as info:
        raw_write(path, text)
    assert info.value.errno is not None
    return info.value.errno


def test_a_missing_pid_is_enomem_and_changes_nothing(driver: DebugfsDriver, workload: Layout) -> None:
    driver.apply(0, monitor(workload.pid))
    missing = int(Path("/proc/sys/kernel/pid_max").read_text()) - 1
    assert errno_of(DEBUGFS / "target_ids", f"{missing}\n") == errno.ENOMEM
    with pytest.raises(KernelError, match="does not exist") as info:
        driver.apply(0, monitor(missing))
    assert info.value.errno == errno.ENOMEM
    assert driver.read(0) == monitor(workload.pid)


def test_the_kernel_rejects_what_the_driver_refuses_early(driver: DebugfsDriver, workload: Layout) -> None:
    inverted = "10 5 0 0 0 0 5 0 0 0 0 0 0 0 0 0 0 0\n"  # min_sz > max_sz
    assert errno_of(DEBUGFS / "schemes", inverted) == errno.EINVAL
    assert errno_of(DEBUGFS / "attrs", "5000 100000 1000000 2 1000\n") == errno.EINVAL
    assert errno_of(DEBUGFS / "monitor_on", "on\n") == errno.EINVAL  # no targets
    driver.apply(1, monitor(workload.pid))  # a second context; the root one stays empty
    with pytest.raises(KernelError, match="no targets"):
        driver.start(1)
    assert driver.pid(1) is None


def test_running_contexts_refuse_changes(driver: DebugfsDriver, workload: Layout) -> None:
    index, pid = driver.launch(monitor(workload.pid))
    assert errno_of(DEBUGFS / "attrs", "5000 100000 1000000 10 1000\n") == errno.EBUSY
    assert errno_of(DEBUGFS / "mk_contexts", "extra\n") == errno.EBUSY
    with pytest.raises(OSError) as info:
        (DEBUGFS / "init_regions").read_text()
    assert info.value.errno == errno.EBUSY
    with pytest.raises(BusyError, match="stop it"):
        driver.apply(index, monitor(workload.pid))
    assert driver.pid(index) == pid  # still running, untouched


def test_vaddr_targets_are_dropped_at_off(driver: DebugfsDriver, workload: Layout) -> None:
    index, _ = driver.launch(monitor(workload.pid))
    assert (DEBUGFS / "target_ids").read_text().split() == [str(workload.pid)]
    assert driver.stop(index)
    assert (DEBUGFS / "target_ids").read_text().strip() == ""
    assert driver.read(index).contexts[0].targets == ()
    assert errno_of(DEBUGFS / "monitor_on", "off\n") == errno.EPERM
    assert not driver.stop(index)  # nothing left to stop: not an error for the driver


def test_a_context_ends_when_its_target_exits(driver: DebugfsDriver) -> None:
    with hot_cold_workload() as w:
        index, _ = driver.launch(monitor(w.pid))
    for _ in range(1200):  # the kdamond notices at its next sampling; 60 s at most
        if driver.pid(index) is None:
            break
        time.sleep(0.05)
    with pytest.raises(KernelError, match="stopped by itself"):
        driver.ensure_running(index)


def test_contexts_made_with_mk_contexts(driver: DebugfsDriver, workload: Layout) -> None:
    assert driver.apply(0, monitor(workload.pid)) == 0
    assert driver.apply(1, monitor(workload.pid)) == 1
    assert (DEBUGFS / "kdamon1" / "attrs").exists()
    assert errno_of(DEBUGFS / "mk_contexts", "kdamon1\n") == errno.EEXIST
    pid0 = driver.start(0)
    pid1 = driver.ensure_running(1)
    assert pid0 != pid1
    assert driver.stop(0)
    assert driver.pid(1) is None  # off stops every debugfs context
    driver.release(1)
    assert driver.contexts() == [""]


def _start_sysfs_kdamond(pid: int) -> Path:
    kdamonds = KDAMONDS
    raw_write(kdamonds / "nr_kdamonds", "1")
    ctx = kdamonds / "0" / "contexts"
    raw_write(ctx / "nr_contexts", "1")
    raw_write(ctx / "0" / "operations", "vaddr")
    raw_write(ctx / "0" / "targets" / "nr_targets", "1")
    raw_write(ctx / "0" / "targets" / "0" / "pid_target", str(pid))
    return kdamonds / "0" / "state"


@pytest.mark.skipif(not HAS_SYSFS, reason="no DAMON sysfs interface in this kernel")
def test_sysfs_kdamond_blocks_debugfs(driver: DebugfsDriver, workload: Layout) -> None:
    state = _start_sysfs_kdamond(workload.pid)
    raw_write(state, "on")
    driver.apply(0, monitor(workload.pid))
    assert driver.monitor_on()  # monitor_on reads on for the sysfs kdamond
    assert driver.state(0) == "off" and driver.pid(0) is None
    with pytest.raises(BusyError, match="sysfs kdamond"):
        driver.start(0)
    assert driver.pid(0) is None
    raw_write(state, "off")
    assert not driver.monitor_on()
    assert driver.start(0) > 0


@pytest.mark.skipif(not HAS_SYSFS, reason="no DAMON sysfs interface in this kernel")
def test_debugfs_blocks_sysfs(driver: DebugfsDriver, workload: Layout) -> None:
    state = _start_sysfs_kdamond(workload.pid)
    driver.launch(monitor(workload.pid))
    assert errno_of(state, "on") == errno.EBUSY
    assert state.read_text().strip() == "off"
    assert driver.stop(0)
    raw_write(state, "on")
    assert state.read_text().strip() == "on"
