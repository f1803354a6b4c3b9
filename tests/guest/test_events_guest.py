"""Process events in a guest (root, initial namespaces): a kdamond target's exit is seen.

The process connector (CONFIG_PROC_EVENTS) is expected unless the kernel's
own configuration (/proc/config.gz) says it was built without it; then the
pidfd fallback must be the one used.
"""

from __future__ import annotations

import gzip
import subprocess
import time
from pathlib import Path

from kdamon.events.proc import ProcessWatcher
from kdamon.kernel.sysfs import SysfsDriver
from kdamon.model import Context, Intervals, Kdamond, Target

CONFIG_GZ = Path("/proc/config.gz")


def built_with(option: str) -> bool | None:
    """Whether the running kernel was built with ``CONFIG_<option>``; None without IKCONFIG_PROC."""
    if not CONFIG_GZ.exists():
        return None
    lines = gzip.decompress(CONFIG_GZ.read_bytes()).decode().splitlines()
    return f"CONFIG_{option}=y" in lines


def test_a_watched_target_exit_and_the_kdamond_ending() -> None:
    child = subprocess.Popen(["sleep", "600"])
    driver = SysfsDriver()
    index, _pid = driver.launch(
        Kdamond(
            contexts=(
                Context(
                    ops="vaddr", intervals=Intervals(sample_us=5_000, aggr_us=100_000), targets=(Target(pid=child.pid),)
                ),
            )
        )
    )
    try:
        with ProcessWatcher([child.pid]) as watcher:
            assert watcher.backend == ("pidfd" if built_with("PROC_EVENTS") is False else "connector")
            assert driver.state(index) == "on"
            child.kill()
            child.wait()  # reaped: a zombie would keep the kdamond running
            event = watcher.wait_exit(60)
            assert event is not None, "no exit event within 60 s"
            assert (event.pid, event.kind) == (child.pid, "exit")
            if watcher.backend == "connector":  # a pidfd cannot read the status of a child reaped above
                assert event.exit_code == -9
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
