"""SysfsDriver on a real DAMON kernel (6.12 and 7.3 guests, as root, KDAMON_GUEST=1)."""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import attrs
import pytest

from kdamon.errors import BusyError, FeatureMissingError, KernelError, OwnershipError
from kdamon.kernel.modules import DamonModules
from kdamon.kernel.sysfs import DEFAULT_ROOT, SysfsDriver
from kdamon.kernel.sysfs_features import Features
from kdamon.kernel.sysfs_io import RetryPolicy, SysfsIO
from kdamon.kernel.sysfs_plan import canonical
from kdamon.model import (
    AccessPattern,
    Context,
    Dest,
    Filter,
    Intervals,
    IntervalsGoal,
    Kdamond,
    NrRegions,
    Quota,
    QuotaGoal,
    QuotaWeights,
    Region,
    Scheme,
    Target,
    Watermarks,
)
from kdamon.testing.raw_sysfs import raw_write
from kdamon.testing.waiting import wait_until
from logging_fs import LoggingFs
from quirks import skip_if_reclaim_ignores_enabled

KDAMONDS = DEFAULT_ROOT / "kdamonds"
T = TypeVar("T")
# The driver's command for each state keyword that came after 5.19
COMMANDS: dict[str, Callable[[SysfsDriver, int], None]] = {
    "update_schemes_tried_regions": SysfsDriver.update_tried_regions,
    "update_schemes_tried_bytes": SysfsDriver.update_tried_bytes,
    "clear_schemes_tried_regions": SysfsDriver.clear_tried_regions,
    "commit_schemes_quota_goals": SysfsDriver.commit_quota_goals,
    "update_schemes_effective_quotas": SysfsDriver.update_effective_quotas,
    "update_tuned_intervals": SysfsDriver.update_tuned_intervals,
}


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield proc
    proc.kill()
    proc.wait()


def unchecked(cls: type[T], **fields: Any) -> T:
    """A model object built without its validators: to reach the kernel's own checks."""
    obj = cls.__new__(cls)
    for field in attrs.fields(cls):  # type: ignore[arg-type]
        default = field.default.factory() if isinstance(field.default, attrs.Factory) else field.default  # type: ignore[arg-type, misc]
        object.__setattr__(obj, field.name, fields.get(field.name, default))
    return obj


def vaddr(pid: int, **ctx: Any) -> Kdamond:
    fields: dict[str, Any] = {"targets": (Target(pid=pid),), "schemes": (Scheme(),)} | ctx
    return Kdamond(contexts=(Context(**fields),))


def rich(pid: int, feats: Features) -> Kdamond:
    """A configuration using every file this kernel has (memcg paths aside).

    ``feats`` must have seen a scheme with a filter and a quota goal where the
    kernel has those directories (see ``test_every_file_is_written_and_read_back``).
    """
    new = bool(feats.layered_filters)
    filters: list[Filter] = []
    if feats.has("scheme", "filters"):  # 6.3
        filters.append(Filter("anon", matching=True))
    if feats.has("filter", "addr_start"):  # addr and target filters: 6.6
        filters += [Filter("addr", addr_start=0, addr_end=2**30, allow=new), Filter("target", target_idx=0)]
    if new:
        filters.append(Filter("hugepage_size", min=4096, max=2**21))
    goals: list[QuotaGoal] = []
    if feats.has("quotas", "goals"):  # 6.8
        goals.append(QuotaGoal(target_value=10, current_value=3))
    if feats.has("goal", "target_metric"):  # 6.9
        goals.append(QuotaGoal(metric="some_mem_psi_us", target_value=1000))
    if feats.has("goal", "nid"):
        goals.append(QuotaGoal(metric="node_mem_used_bp", target_value=5000, nid=0))
    scheme = Scheme(
        action="cold",
        access_pattern=AccessPattern(4096, 2**40, 0, 3, 10, 2**31),
        apply_interval_us=200_000 if feats.has("scheme", "apply_interval_us") else 0,
        target_nid=0 if feats.has("scheme", "target_nid") else -1,
        quota=Quota(
            ms=10,
            bytes=2**20,
            reset_interval_ms=1000,
            weights=QuotaWeights(1, 2, 3),
            goals=tuple(goals),
            goal_tuner="temporal" if feats.has("quotas", "goal_tuner") else None,
            fail_charge_num=1 if feats.has("quotas", "fail_charge_num") else 0,
            fail_charge_denom=2 if feats.has("quotas", "fail_charge_num") else 0,
        ),
        watermarks=Watermarks("free_mem_rate", 5_000_000, 800, 500, 100),
        filters=tuple(filters),
        dests=(Dest(0, 3),) if feats.has("scheme", "dests") else (),
        max_nr_snapshots=5 if feats.has("stats", "max_nr_snapshots") else 0,
    )
    goal = IntervalsGoal(400, 3, 1000, 10_000) if feats.intervals_goal else IntervalsGoal()
    ctx = Context(
        ops="vaddr",
        addr_unit=1,
        pause=bool(feats.has("context", "pause")),
        intervals=Intervals(sample_us=2000, aggr_us=40_000, update_us=1_000_000, goal=goal),
        nr_regions=NrRegions(3, 50),
        targets=(Target(pid=pid, regions=(Region(0x10000, 0x20000), Region(0x30000, 0x50000))),),
        schemes=(scheme, Scheme()),
    )
    return Kdamond(contexts=(ctx,), refresh_ms=1000 if feats.refresh_ms else 0)


def test_every_file_is_written_and_read_back(driver: SysfsDriver, fs: LoggingFs, child: Any) -> None:
    driver.apply(0, vaddr(child.pid))  # a scheme directory shows which files this kernel has
    feats = driver.features()
    # a filter (6.3) and a quota goal (6.8) directory, where the kernel has them, show theirs
    seen = Scheme(
        filters=(Filter("anon"),) if feats.has("scheme", "filters") else (),
        quota=Quota(goals=(QuotaGoal(target_value=1),) if feats.has("quotas", "goals") else ()),
    )
    driver.apply(0, vaddr(child.pid, schemes=(seen,)))
    kd = rich(child.pid, driver.features())
    fs.writes.clear()
    driver.apply(0, kd)
    assert driver.read(0) == canonical(kd, layered=bool(driver.features().layered_filters))
    written = {p.name for p, _ in fs.writes}
    writable = {
        p.name
        for p in (KDAMONDS / "0").rglob("*")
        if p.is_file() and p.stat().st_mode & 0o200 and "probes" not in p.parts
    }
    # state is for commands; memcg paths need a cgroup; nr_* only change when counts differ
    untouched = writable - written - {"state", "memcg_path", "path"}
    assert {n for n in untouched if not n.startswith("nr_")} == set()


def test_every_state_keyword(driver: SysfsDriver, child: Any) -> None:
    stat_all = Scheme(access_pattern=AccessPattern(), quota=Quota(ms=100, reset_interval_ms=100))
    driver.apply(0, vaddr(child.pid, schemes=(stat_all,)))
    feats = driver.features()  # scheme files are visible now
    if feats.intervals_goal:
        tuned = Intervals(sample_us=5000, aggr_us=100_000, goal=IntervalsGoal(400, 2, 1000, 20_000))
        driver.apply(0, vaddr(child.pid, schemes=(stat_all,), intervals=tuned))
    assert None not in {feats.knows(keyword) for keyword in COMMANDS}  # the directories were all seen
    pid = driver.start(0)
    assert driver.state(0) == "on" and driver.pid(0) == pid

    def tried() -> int:
        driver.update_schemes_stats(0)
        return driver.scheme_stats(0)[0].nr_tried

    wait_until(tried, lambda n: n > 0, "the stat scheme to try regions")
    if feats.knows("update_schemes_tried_regions"):  # 6.2
        driver.update_tried_regions(0)
        total, regions = driver.tried_regions(0, 0)
        assert regions and total == sum(r.end - r.start for r in regions)
        assert regions == sorted(regions, key=lambda r: r.start)
    if feats.knows("update_schemes_tried_bytes"):  # 6.6
        driver.update_tried_bytes(0)
        assert driver.tried_regions(0, 0)[0] > 0
    if feats.knows("clear_schemes_tried_regions"):  # 6.2
        driver.clear_tried_regions(0)
        assert driver.tried_regions(0, 0)[1] == []
    if feats.knows("commit_schemes_quota_goals"):  # 6.8
        driver.commit_quota_goals(0)
    if feats.knows("update_schemes_effective_quotas"):  # 6.9

        def effective() -> int:
            driver.update_effective_quotas(0)
            return driver.effective_quota(0, 0)

        # 0 until the first 100 ms quota window ends (6.12), then a time quota's size: a page at least
        wait_until(effective, lambda size: size >= os.sysconf("SC_PAGE_SIZE"), "an effective quota")
    for keyword, command in COMMANDS.items():  # what the files show missing is refused by name
        if feats.knows(keyword) is False:
            with pytest.raises(FeatureMissingError, match=f"'{keyword}' needs DAMON sysfs of Linux"):
                command(driver, 0)
    assert driver.state(0) == "on" and driver.pid(0) == pid
    if "update_tuned_intervals" in feats.state_keywords:
        driver.update_tuned_intervals(0)
        sample_us, aggr_us = driver.tuned_intervals(0)
        assert 1000 <= sample_us <= 20_000 and aggr_us >= sample_us
    if feats.refresh_ms:
        driver.set_refresh_ms(0, 200)
    driver.commit(0, vaddr(child.pid, schemes=(stat_all, stat_all)))
    assert driver.pid(0) == pid and len(driver.scheme_stats(0)) == 2
    assert driver.stop(0) is True
    assert driver.state(0) == "off"


def _gone_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _release() -> tuple[int, int]:
    major, minor = re.match(r"(\d+)\.(\d+)", os.uname().release).groups()  # type: ignore[union-attr]
    return int(major), int(minor)


# Rejections that no file shows, by the release that brought them (damon-abi.md):
# sample_us > aggr_us from 6.4 (§2.5, §6.4); a zero-size region is started on 6.1
# (whose sysfs checks only start > end and overlaps) and rejected on 6.12 and 7.3.
REJECTED_SINCE = {"sample > aggr": (6, 4), "zero-size region": (6, 12)}


@pytest.mark.parametrize(
    "case",
    ["nonexistent pid", "zero-size region", "reversed region", "min < 3", "sample > aggr", "paddr with two targets"],
)
def test_kernel_rejections_are_typed_and_leave_nothing(driver: SysfsDriver, child: Any, case: str) -> None:
    since = REJECTED_SINCE.get(case, (0, 0))
    if _release() < since:
        pytest.skip(
            f"Linux {os.uname().release} accepts a {case} configuration; the rejection is "
            f"checked from {since[0]}.{since[1]} on"
        )
    if case == "nonexistent pid":
        kd = vaddr(_gone_pid())
    elif case.endswith("region"):
        start, end = (0, 0) if case == "zero-size region" else (0x20000, 0x10000)
        kd = vaddr(child.pid, targets=(Target(pid=child.pid, regions=(unchecked(Region, start=start, end=end),)),))
    elif case == "min < 3":
        kd = vaddr(child.pid, nr_regions=unchecked(NrRegions, min=2, max=1000))
    elif case == "sample > aggr":
        kd = vaddr(child.pid, intervals=unchecked(Intervals, sample_us=200_000, aggr_us=100_000))
    else:
        kd = Kdamond(contexts=(unchecked(Context, ops="paddr", targets=(Target(), Target())),))
    with pytest.raises(KernelError) as info:
        driver.launch(kd)
    assert info.value.errno == errno.EINVAL and "Likely causes" in str(info.value)
    assert (KDAMONDS / "nr_kdamonds").read_text() == "0\n"
    assert driver.owners.get(driver.root, 0) is None


def test_ebusy_paths(driver: SysfsDriver, child: Any) -> None:
    index, pid = driver.launch(vaddr(child.pid))
    with pytest.raises(BusyError, match="already running"):
        driver.start(index)
    with pytest.raises(BusyError, match=f"pid {pid}"):
        driver.apply(index + 1, vaddr(child.pid))
    with pytest.raises(KernelError) as info:  # the kernel's own EBUSY, through the I/O layer
        SysfsIO(retry=RetryPolicy(attempts=2)).write(KDAMONDS / "nr_kdamonds", 2)
    assert info.value.errno == errno.EBUSY
    driver.stop(index)


def test_damon_reclaim_blocks_start_and_is_named(driver: SysfsDriver, child: Any) -> None:
    enabled = Path("/sys/module/damon_reclaim/parameters/enabled")
    if not enabled.exists():
        pytest.skip("this kernel has no DAMON_RECLAIM")
    skip_if_reclaim_ignores_enabled()
    raw_write(enabled, "Y")  # the test enables it itself, as a user would
    try:
        wait_until(lambda: DamonModules().running(), bool, "DAMON_RECLAIM's kdamond to run")
        with pytest.raises(BusyError) as info:
            driver.launch(vaddr(child.pid))
        assert "DAMON_RECLAIM" in str(info.value) and "echo N > /sys/module/damon_reclaim" in str(info.value)
        assert enabled.read_text().strip() == "Y"  # never disabled on the user's behalf
    finally:
        raw_write(enabled, "N")
    assert (KDAMONDS / "nr_kdamonds").read_text() == "0\n"


def test_damon_stat_blocks_start(driver: SysfsDriver, child: Any) -> None:
    enabled = Path("/sys/module/damon_stat/parameters/enabled")
    if not enabled.exists() or enabled.read_text().strip() != "Y":
        pytest.skip("DAMON_STAT is not enabled (run the 7.3 guest with --cmdline damon_stat.enabled=Y)")
    with pytest.raises(BusyError, match="DAMON_STAT") as info:
        driver.launch(vaddr(child.pid))
    assert "damon_stat.enabled=N" in str(info.value)
    assert enabled.read_text().strip() == "Y"


def test_all_targets_exiting_stops_the_kdamond_and_the_driver_says_so(driver: SysfsDriver) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    index, pid = driver.launch(vaddr(proc.pid))
    assert driver.ensure_running(index) == pid
    proc.send_signal(signal.SIGKILL)
    proc.wait()  # reaped: a zombie would keep the kdamond alive
    wait_until(lambda: driver.state(index), lambda state: state == "off", "the kdamond to stop by itself")
    with pytest.raises(KernelError, match="stopped by itself"):
        driver.ensure_running(index)
    assert driver.stop(index) is False


def test_foreign_kdamond_is_untouched(driver: SysfsDriver, child: Any) -> None:
    raw_write(KDAMONDS / "nr_kdamonds", "1")
    ctx = KDAMONDS / "0" / "contexts"
    raw_write(ctx / "nr_contexts", "1")
    raw_write(ctx / "0" / "targets" / "nr_targets", "1")
    raw_write(ctx / "0" / "targets" / "0" / "pid_target", str(child.pid))
    raw_write(KDAMONDS / "0" / "state", "on")
    pid = driver.pid(0)

    def files() -> dict[str, str]:
        return {
            str(p): p.read_text()
            for p in (KDAMONDS / "0").rglob("*")
            if p.is_file() and p.stat().st_mode & 0o400 and "tried_regions" not in p.parts
        }

    before = files()
    with pytest.raises(OwnershipError, match=f"pid {pid}"):
        driver.launch(vaddr(child.pid))
    for mutate in (
        driver.stop,
        driver.start,
        driver.update_schemes_stats,
        driver.update_tried_regions,
        driver.clear_tried_regions,
        driver.release,
        lambda i: driver.commit(i, vaddr(child.pid)),
        lambda i: driver.apply(i, vaddr(child.pid)),
    ):
        with pytest.raises(OwnershipError):
            mutate(0)
    driver.read(0)
    driver.scheme_stats(0)
    assert files() == before and driver.pid(0) == pid and driver.state(0) == "on"
