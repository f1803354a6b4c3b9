"""kdamon check in a real guest: the pytest plugin's fixtures, and a subset of the suite end to end.

Nothing here enables tracing: under multi-vCPU TCG, toggling trace events
live-patches kernel text, which QEMU sometimes mishandles (see
``kdamon.check.host.default_cpus``).
"""

from __future__ import annotations

import subprocess
import sys

from kdamon.backend.types import Backend
from kdamon.check.harness import calibrate, running, wait_stats
from kdamon.check.results import Status, parse_console
from kdamon.kernel.sysfs import SysfsDriver
from kdamon.model import AccessPattern, Context, Kdamond, Region, Scheme, Target
from kdamon.testing.workloads import Workload


def test_damon_fixture_is_kernel_damon(damon: Backend) -> None:
    assert damon.name == "sysfs"
    assert all(status.owner != "kdamon" for status in damon.status())


def test_fixtures_monitor_a_workload(damon_sysfs: SysfsDriver, hot_cold_workload: Workload) -> None:
    """One scheme sees hot regions and one sees cold regions of the hot/cold workload."""
    layout = hot_cold_workload.layout
    cal = calibrate(layout)
    top = cal.max_nr_accesses
    hot = Scheme(access_pattern=AccessPattern(nr_accesses_min=top // 2))
    cold = Scheme(access_pattern=AccessPattern(nr_accesses_max=0))
    target = Target(pid=layout.pid, regions=(Region(*layout.span),))
    with running(
        damon_sysfs, Kdamond(contexts=(Context(intervals=cal.intervals, targets=(target,), schemes=(hot, cold)),))
    ) as (index, _):
        hot_stats = wait_stats(damon_sysfs, index, lambda s: s.nr_tried > 0, scheme=0, timeout_s=60)
        cold_stats = wait_stats(damon_sysfs, index, lambda s: s.nr_tried > 0, scheme=1, timeout_s=60)
    assert hot_stats.nr_tried > 0, "no region of the workload was hot"
    assert cold_stats.nr_tried > 0, "no region of the workload was cold"
    assert damon_sysfs.nr_kdamonds() == 0 or damon_sysfs.state(index) == "off"


def test_suite_subset_reports_every_check() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kdamon.check.guest", "-k", "abi and not tried or unknown_keyword"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    console = parse_console(done.stdout.splitlines())
    assert console.complete, done.stdout[-2000:] + done.stderr[-2000:]
    ids = {r.id for r in console.results}
    assert {"abi.tree_complete", "abi.file_modes", "state.unknown_keyword"} <= ids
    bad = [r for r in console.results if r.status is not Status.PASS]
    assert not bad, bad
    assert done.returncode == 0
