"""DAMOS: actions with their stats moving as expected, quotas and watermarks enforced."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kdamon.check.emit import NOTE
from kdamon.check.harness import biggest_system_ram, calibrate, running, wait_stats
from kdamon.kernel.sysfs import SysfsDriver
from kdamon.model import (
    Context,
    Kdamond,
    Quota,
    Region,
    Scheme,
    SchemeStats,
    Target,
    Watermarks,
)
from kdamon.testing.workloads import Layout, Workload

Version = tuple[int, int]
RecordProperty = Callable[[str, object], None]
QUOTA = 1 << 20
RESET_MS = 200
# action: (operations set, first release)
ACTIONS = {
    "pageout": ("vaddr", (5, 18)),
    "cold": ("vaddr", (5, 18)),
    "lru_prio": ("paddr", (6, 0)),
    "lru_deprio": ("paddr", (6, 0)),
}


def _vaddr(layout: Layout, *schemes: Scheme) -> Kdamond:
    cal = calibrate(layout)
    target = Target(pid=layout.pid, regions=(Region(*layout.span),))
    return Kdamond(contexts=(Context(intervals=cal.intervals, targets=(target,), schemes=schemes),))


def _count(value: int | None) -> int:
    """A ``stats/`` counter that sysfs always reports (unknown only on 5.16's debugfs)."""
    assert value is not None, "sysfs reported a stats/ counter as unknown"
    return value


def test_stat_counts_tried_not_applied(damon_sysfs: SysfsDriver, shared_hot_cold: Workload) -> None:
    """stat: nr_tried and sz_tried grow, nr_applied and sz_applied stay 0"""
    with running(damon_sysfs, _vaddr(shared_hot_cold.layout, Scheme())) as (index, _):
        first = wait_stats(damon_sysfs, index, lambda s: s.nr_tried > 0)
        assert first.nr_tried > 0, "the all-matching stat scheme tried no region"
        later = wait_stats(damon_sysfs, index, lambda s: s.nr_tried > first.nr_tried)
    assert later.nr_tried > first.nr_tried and later.sz_tried > first.sz_tried, (
        f"stats stopped moving: {first} then {later}"
    )
    assert later.nr_applied == 0 and later.sz_applied == 0, f"stat counted applications: {later}"


@pytest.fixture(scope="module")
def applied(
    raw_driver: SysfsDriver, shared_hot_cold: Workload, version: Version
) -> Iterator[dict[str, SchemeStats | str]]:
    """Each action's stats (or why it was not run): one kdamond per operations set, one scheme per action."""
    out: dict[str, SchemeStats | str] = {}
    avail = raw_driver.features().avail_operations or ("vaddr", "paddr")
    ram = biggest_system_ram()
    cal = calibrate(shared_hot_cold.layout)
    for ops in ("vaddr", "paddr"):
        names = [a for a, (o, since) in ACTIONS.items() if o == ops]
        usable = [a for a in names if version >= ACTIONS[a][1]]
        for a in set(names) - set(usable):
            out[a] = f"the {a} action needs Linux {ACTIONS[a][1][0]}.{ACTIONS[a][1][1]}+"
        if ops not in avail or (ops == "paddr" and ram is None):
            why = (
                f"this kernel lacks the {ops} operations set" if ops not in avail else "/proc/iomem shows no System RAM"
            )
            out.update({a: why for a in usable})
            continue
        # A small size quota keeps each apply round cheap under emulation.
        schemes = tuple(Scheme(action=a, quota=Quota(bytes=8 << 20, reset_interval_ms=100)) for a in usable)
        if ops == "paddr" and ram is not None:
            kdamond = Kdamond(
                contexts=(
                    Context(ops="paddr", intervals=cal.intervals, targets=(Target(regions=(ram,)),), schemes=schemes),
                )
            )
        else:
            kdamond = _vaddr(shared_hot_cold.layout, *schemes)
        with running(raw_driver, kdamond) as (index, _):
            for n, action in enumerate(usable):
                out[action] = wait_stats(raw_driver, index, lambda s: _count(s.nr_applied) > 0, scheme=n)
    yield out


@pytest.mark.parametrize("action", list(ACTIONS))
def test_action_applied(action: str, applied: dict[str, SchemeStats | str], record_property: RecordProperty) -> None:
    """an action is applied to the regions it tried: nr_applied and sz_applied grow, within what was tried"""
    stats = applied[action]
    if isinstance(stats, str):
        pytest.skip(stats)
    record_property(
        NOTE,
        f"{ACTIONS[action][0]}: nr_tried {stats.nr_tried}, nr_applied {stats.nr_applied}, "
        f"sz_tried {stats.sz_tried}, sz_applied {stats.sz_applied}",
    )
    nr_applied, sz_applied = _count(stats.nr_applied), _count(stats.sz_applied)
    assert stats.nr_tried > 0, f"{action} tried no region"
    assert nr_applied > 0 and sz_applied > 0, f"{action} was never applied: {stats}"
    assert nr_applied <= stats.nr_tried and sz_applied <= stats.sz_tried, f"applied more than tried: {stats}"


def test_quota_bytes_enforced(
    damon_sysfs: SysfsDriver, shared_hot_cold: Workload, record_property: RecordProperty
) -> None:
    """a size quota caps the bytes tried per charge window and counts the windows it was exceeded"""
    scheme = Scheme(quota=Quota(bytes=QUOTA, reset_interval_ms=RESET_MS))
    with running(damon_sysfs, _vaddr(shared_hot_cold.layout, scheme)) as (index, _):
        # 6.12 does not limit the first window: start counting after it.
        time.sleep(3 * RESET_MS / 1000)
        first = wait_stats(damon_sysfs, index, lambda s: s.nr_tried > 0)
        exceeded = _count(first.qt_exceeds)
        t0 = time.monotonic()
        time.sleep(6 * RESET_MS / 1000)
        last = wait_stats(damon_sysfs, index, lambda s: _count(s.qt_exceeds) > exceeded)
        elapsed = time.monotonic() - t0
    tried = last.sz_tried - first.sz_tried
    exceeds = _count(last.qt_exceeds) - exceeded
    windows = elapsed * 1000 / RESET_MS + 2  # the windows the interval touches, and the stats' own latency
    allowed = QUOTA * windows
    record_property(
        NOTE,
        f"{tried / 2**20:.1f} MiB tried in {elapsed:.1f} s (quota {QUOTA >> 20} MiB per "
        f"{RESET_MS} ms: at most {allowed / 2**20:.1f} MiB); qt_exceeds +{exceeds}",
    )
    assert tried > 0, "nothing was tried under the quota"
    assert tried <= allowed, f"{tried} bytes tried, more than the quota allows ({allowed:.0f})"
    assert exceeds > 0, f"qt_exceeds did not grow: {first.qt_exceeds} -> {last.qt_exceeds}"


def _free_permil() -> int:
    info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    return int(info["MemFree"].split()[0]) * 1000 // int(info["MemTotal"].split()[0])


def test_watermarks_enforced(
    damon_sysfs: SysfsDriver, shared_hot_cold: Workload, record_property: RecordProperty
) -> None:
    """of two schemes, the one whose free-memory watermarks are met is applied, the other never"""
    free = _free_permil()
    if not 1 < free < 1000:
        pytest.skip(f"free memory is {free} permil: no watermark pair can tell met from unmet")
    check = 100_000
    unmet = Watermarks(metric="free_mem_rate", interval_us=check, high=1, mid=0, low=0)  # free > high
    met = Watermarks(metric="free_mem_rate", interval_us=check, high=1000, mid=1000, low=0)
    kdamond = _vaddr(shared_hot_cold.layout, Scheme(watermarks=unmet), Scheme(watermarks=met))
    with running(damon_sysfs, kdamond) as (index, _):
        active = wait_stats(damon_sysfs, index, lambda s: s.nr_tried > 2, scheme=1)
        inactive = damon_sysfs.scheme_stats(index)[0]
    record_property(
        NOTE,
        f"free memory {free} permil; met (high 1000): nr_tried {active.nr_tried}; "
        f"unmet (high 1): nr_tried {inactive.nr_tried}",
    )
    assert active.nr_tried > 0, "the scheme whose watermarks are met tried nothing"
    assert inactive.nr_tried == 0, f"the scheme whose watermarks are not met tried {inactive.nr_tried} regions"
