"""Process events in a guest (root, initial namespaces): the connector sees a kdamond target exit."""

from __future__ import annotations

import subprocess
import time

from kdamon.events.proc import ProcessEvent, ProcessWatcher
from kdamon.kernel.sysfs import SysfsDriver
from kdamon.model import Context, Intervals, Kdamond, Target


def test_a_watched_target_exit_and_the_kdamond_ending() -> None:
    child = subprocess.Popen(["sleep", "600"])
    driver = SysfsDriver()
    index, _pid = driver.launch(Kdamond(contexts=(Context(
        ops="vaddr", intervals=Intervals(sample_us=5_000, aggr_us=100_000), targets=(Target(pid=child.pid),)),)))
    try:
        with ProcessWatcher([child.pid]) as watcher:
            assert watcher.backend == "connector"
            assert driver.state(index) == "on"
            child.kill()
            child.wait()  # reaped: a zombie would keep the kdamond running
            assert watcher.wait_exit(60) == ProcessEvent(child.pid, "exit", -9)
        # the kernel leaves its loop at the next sampling iteration without any valid target
        for _ in range(1200):
            if driver.state(index) == "off":
                break
            time.sleep(0.05)
        assert driver.state(index) == "off"
        assert driver.stop(index) is False  # it had ended by itself
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        driver.release(index)
