"""SysfsDriver against the fake kernel: staging, read-back, undo, results."""

from __future__ import annotations

import errno
import shutil
from collections import Counter

import pytest

from fake_damon import FakeDamonFs
from kdamon.errors import BusyError, FeatureMissingError, KernelError
from kdamon.kernel.sysfs import SysfsDriver
from kdamon.kernel.sysfs_plan import canonical
from kdamon.model import (
    AccessPattern,
    Context,
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

Kernel = tuple[SysfsDriver, FakeDamonFs]
NR_FILES = {
    "nr_kdamonds",
    "nr_contexts",
    "nr_targets",
    "nr_regions",
    "nr_schemes",
    "nr_goals",
    "nr_filters",
    "nr_dests",
}


def is_count(path: str) -> bool:
    return path.rsplit("/", 1)[-1] in NR_FILES


def vaddr(*, targets: int = 1, schemes: int = 1, sample_us: int = 5000) -> Kdamond:
    return Kdamond(
        contexts=(
            Context(
                intervals=Intervals(sample_us=sample_us, aggr_us=100_000),
                nr_regions=NrRegions(5, 500),
                targets=tuple(
                    Target(pid=4242, regions=(Region(0x1000 * (i + 1), 0x1000 * (i + 2)),)) for i in range(targets)
                ),
                schemes=tuple(
                    Scheme(action="pageout" if i % 2 else "stat", access_pattern=AccessPattern(sz_min=4096, age_min=i))
                    for i in range(schemes)
                ),
            ),
        )
    )


RICH = Kdamond(
    contexts=(
        Context(
            ops="vaddr",
            intervals=Intervals(sample_us=1000, aggr_us=20_000, update_us=1_000_000),
            nr_regions=NrRegions(3, 50),
            targets=(Target(pid=4242, regions=(Region(0x10000, 0x20000), Region(0x30000, 0x50000))), Target(pid=4242)),
            schemes=(
                Scheme(
                    action="cold",
                    access_pattern=AccessPattern(4096, 2**40, 0, 3, 10, 2**31),
                    apply_interval_us=200_000,
                    target_nid=0,
                    quota=Quota(
                        ms=10,
                        bytes=2**20,
                        reset_interval_ms=1000,
                        weights=QuotaWeights(1, 2, 3),
                        goals=(
                            QuotaGoal(target_value=10, current_value=3),
                            QuotaGoal(metric="some_mem_psi_us", target_value=1000),
                        ),
                    ),
                    watermarks=Watermarks("free_mem_rate", 5_000_000, 800, 500, 100),
                    filters=(
                        Filter("anon", matching=True),
                        Filter("addr", addr_start=0, addr_end=0x40000),
                        Filter("target", target_idx=1),
                    ),
                ),
                Scheme(),
            ),
        ),
    )
)


def test_apply_then_read_back_equals_the_applied_config(kernel: Kernel) -> None:
    driver, fake = kernel
    driver.apply(0, RICH)
    layered = fake.new
    assert driver.read(0) == canonical(RICH, layered=layered)
    # and in the kernel's own files
    ctx = fake.base / "kdamonds/0/contexts/0"
    assert (ctx / "schemes/0/quotas/goals/1/target_metric").read_text() == "some_mem_psi_us\n"
    assert (ctx / "schemes/0/watermarks/metric").read_text() == "free_mem_rate\n"


def test_layered_kernels_put_filters_in_their_layer_directory(kernel73: Kernel) -> None:
    driver, fake = kernel73
    driver.apply(0, RICH)
    scheme = fake.base / "kdamonds/0/contexts/0/schemes/0"
    assert (scheme / "core_filters/nr_filters").read_text() == "2\n"
    assert (scheme / "ops_filters/nr_filters").read_text() == "1\n"
    assert (scheme / "filters/nr_filters").read_text() == "0\n"
    assert driver.read(0).contexts[0].schemes[0].filters[0].type == "addr"


def test_every_leaf_is_written_at_most_once(kernel: Kernel) -> None:
    driver, fake = kernel
    driver.apply(0, RICH)
    repeated = [p for p, n in Counter(p for p, _ in fake.writes).items() if n > 1]
    assert repeated == []


def test_nr_files_are_written_only_when_the_count_changes(kernel: Kernel) -> None:
    driver, fake = kernel
    driver.apply(0, vaddr(targets=2, schemes=2))
    fake.writes.clear()
    driver.apply(0, vaddr(targets=2, schemes=2, sample_us=2000))
    assert [p for p, _ in fake.writes if is_count(p)] == []
    assert driver.read(0).contexts[0].intervals.sample_us == 2000
    fake.writes.clear()
    driver.apply(0, vaddr(targets=3, schemes=2))
    nr_writes = [p for p, _ in fake.writes if is_count(p)]
    # the new target count, then the regions of each (rebuilt) target
    assert nr_writes[0] == "kdamonds/0/contexts/0/targets/nr_targets"
    assert all("/targets/" in p for p in nr_writes)
    assert driver.read(0) == canonical(vaddr(targets=3, schemes=2), layered=fake.new)


def test_failed_apply_on_a_new_directory_leaves_nothing(kernel: Kernel) -> None:
    driver, fake = kernel
    fake.faults["kdamonds/0/contexts/0/schemes/0/action"] = [errno.EIO]
    with pytest.raises(KernelError) as info:
        driver.apply(0, vaddr())
    assert info.value.errno == errno.EIO
    assert (fake.base / "kdamonds/nr_kdamonds").read_text() == "0\n"
    assert driver.owners.get(driver.root, 0) is None


def test_failed_apply_restores_the_previous_owned_configuration(kernel: Kernel) -> None:
    driver, fake = kernel
    driver.apply(0, vaddr(targets=1))
    before = driver.read(0)
    fake.faults["kdamonds/0/contexts/0/schemes/0/action"] = [errno.EIO]
    with pytest.raises(KernelError):
        driver.apply(0, vaddr(targets=3, sample_us=1000))
    assert driver.read(0) == before
    assert driver.claim(0).value == "owned"


def test_ebusy_is_retried_then_reported(kernel: Kernel) -> None:
    driver, fake = kernel
    sleeps: list[float] = []
    driver.io._sleep = sleeps.append
    fake.faults["kdamonds/nr_kdamonds"] = [errno.EBUSY] * 3
    driver.apply(0, vaddr())
    assert len(sleeps) == 3 and sleeps == sorted(sleeps)
    sleeps.clear()
    target = "kdamonds/0/contexts/0/monitoring_attrs/intervals/sample_us"
    before = driver.read(0)
    fake.faults[target] = [errno.EBUSY] * 10
    with pytest.raises(BusyError) as info:
        driver.apply(0, vaddr(sample_us=1000))
    assert target in str(info.value) and "lock" in str(info.value)
    assert len(sleeps) == 9 and 0.3 < sum(sleeps) < 1.0
    assert driver.read(0) == before  # the undo went through once the lock was free


def test_feature_missing_is_refused_before_any_leaf_and_undone(kernel612: Kernel) -> None:
    driver, fake = kernel612
    goal = Kdamond(
        contexts=(
            Context(
                intervals=Intervals(
                    sample_us=5000, goal=IntervalsGoal(access_bp=400, aggrs=3, min_sample_us=1000, max_sample_us=10000)
                ),
                targets=(Target(pid=4242),),
            ),
        )
    )
    with pytest.raises(FeatureMissingError, match="intervals_goal"):
        driver.apply(0, goal)
    assert not [p for p, _ in fake.writes if not is_count(p)]
    assert (fake.base / "kdamonds/nr_kdamonds").read_text() == "0\n"
    allow = Kdamond(
        contexts=(Context(targets=(Target(pid=4242),), schemes=(Scheme(filters=(Filter("anon", allow=True),)),)),)
    )
    with pytest.raises(FeatureMissingError, match="allow"):
        driver.apply(0, allow)


def test_feature_present_on_newer_kernel(kernel73: Kernel) -> None:
    driver, _ = kernel73
    kd = Kdamond(
        refresh_ms=500,
        contexts=(
            Context(
                pause=True,
                intervals=Intervals(sample_us=5000, goal=IntervalsGoal(400, 3, 1000, 10000)),
                targets=(Target(pid=4242),),
                schemes=(
                    Scheme(
                        quota=Quota(goal_tuner="temporal", goals=(QuotaGoal(target_value=1, nid=1),)),
                        filters=(Filter("hugepage_size", min=4096, max=2**21, allow=True),),
                        max_nr_snapshots=4,
                    ),
                ),
            ),
        ),
    )
    driver.apply(0, kd)
    assert driver.read(0) == canonical(kd, layered=True)


def test_launch_start_stop_and_state_keywords(kernel: Kernel) -> None:
    driver, fake = kernel
    index, pid = driver.launch(vaddr(schemes=2))
    assert (index, driver.pid(index), driver.state(index)) == (0, pid, "on")
    methods = {
        "commit_schemes_quota_goals": driver.commit_quota_goals,
        "update_schemes_stats": driver.update_schemes_stats,
        "update_schemes_tried_bytes": driver.update_tried_bytes,
        "update_schemes_tried_regions": driver.update_tried_regions,
        "clear_schemes_tried_regions": driver.clear_tried_regions,
        "update_schemes_effective_quotas": driver.update_effective_quotas,
    }
    if fake.new:
        methods["update_tuned_intervals"] = driver.update_tuned_intervals
    for keyword, method in methods.items():
        fake.writes.clear()
        method(index)
        assert fake.writes == [("kdamonds/0/state", keyword)]
    assert driver.stop(index) is True
    assert driver.state(index) == "off" and driver.pid(index) is None


def test_keywords_the_kernel_lacks_are_refused_by_name_before_any_write(kernel: Kernel) -> None:
    driver, fake = kernel
    index, _ = driver.launch(vaddr())
    if not fake.new:  # 6.12: no intervals_goal/ (6.15)
        fake.writes.clear()
        with pytest.raises(FeatureMissingError, match=r"'update_tuned_intervals' needs .*6\.15\+.*intervals_goal"):
            driver.update_tuned_intervals(index)
        assert fake.writes == []
    # Linux 6.1: schemes without tried_regions/ (6.2)
    shutil.rmtree(fake.base / "kdamonds/0/contexts/0/schemes/0/tried_regions")
    fake.writes.clear()
    for method in (driver.update_tried_regions, driver.clear_tried_regions, driver.update_tried_bytes):
        with pytest.raises(FeatureMissingError, match="lacks its tried_regions files"):
            method(index)
    with pytest.raises(FeatureMissingError, match=r"6\.2\+"):
        driver.tried_regions(index, 0)
    assert fake.writes == []
    driver.update_schemes_stats(index)  # as old as sysfs: never refused
    assert fake.writes == [("kdamonds/0/state", "update_schemes_stats")]


def test_scheme_stats_and_tried_regions(kernel: Kernel) -> None:
    driver, fake = kernel
    index, _ = driver.launch(vaddr(schemes=2))
    fake.stats = {0: (5, 40960, 0, 0, 1), 1: (7, 8192, 2, 4096, 0)}
    driver.update_schemes_stats(index)
    stats = driver.scheme_stats(index)
    assert [(s.nr_tried, s.sz_applied, s.qt_exceeds) for s in stats] == [(5, 0, 1), (7, 4096, 0)]
    assert (stats[0].nr_snapshots is None) == (not fake.new)
    fake.tried = {s: [(0x1000 * (2 * j + s), 0x1000 * (2 * j + s + 1), j, s) for j in range(7)] for s in (0, 1)}
    driver.update_tried_regions(index)
    for scheme in (0, 1):
        total, regions = driver.tried_regions(index, scheme)
        assert [(r.start, r.nr_accesses) for r in regions] == [(t[0], t[2]) for t in fake.tried[scheme]]
        assert total == 7 * 0x1000


def test_tried_region_directories_interleave_on_612_and_are_sorted_numerically(kernel612: Kernel) -> None:
    driver, fake = kernel612
    index, _ = driver.launch(vaddr(schemes=2))
    fake.tried = {0: [(i * 4096, i * 4096 + 4096, i, 0) for i in range(8)], 1: [(0, 4096, 0, 0)] * 8}
    driver.update_tried_regions(index)
    names = sorted(
        p.name for p in (fake.base / "kdamonds/0/contexts/0/schemes/0/tried_regions").iterdir() if p.name.isdigit()
    )
    assert names == ["0", "10", "12", "14", "2", "4", "6", "8"]  # lexical order would scramble
    _, regions = driver.tried_regions(index, 0)
    assert [r.nr_accesses for r in regions] == list(range(8))


def test_reads_never_write(kernel: Kernel) -> None:
    driver, fake = kernel
    index, _ = driver.launch(RICH)
    driver.update_schemes_stats(index)
    fake.writes.clear()
    driver.read(index)
    driver.state(index)
    driver.pid(index)
    driver.scheme_stats(index)
    driver.tried_regions(index, 0)
    driver.effective_quota(index, 0)
    driver.tuned_intervals(index)
    driver.features()
    driver.claim(index)
    driver.nr_kdamonds()
    assert fake.writes == []


def test_start_einval_is_typed_lists_causes_and_launch_leaves_nothing(kernel: Kernel) -> None:
    driver, fake = kernel
    fake.live_pids = set()
    with pytest.raises(KernelError) as info:
        driver.launch(vaddr())
    assert info.value.errno == errno.EINVAL
    assert "pid that does not exist" in str(info.value) and "sample_us > aggr_us" in str(info.value)
    assert (fake.base / "kdamonds/nr_kdamonds").read_text() == "0\n"
    assert driver.owners.get(driver.root, 0) is None


def test_commit_applies_online(kernel: Kernel) -> None:
    driver, fake = kernel
    index, pid = driver.launch(vaddr(schemes=1))
    driver.commit(index, vaddr(schemes=3, sample_us=1000))
    assert driver.pid(index) == pid
    assert driver.read(index) == canonical(vaddr(schemes=3, sample_us=1000), layered=fake.new)


def test_bad_commit_on_612_kills_the_kdamond_and_says_so(kernel612: Kernel) -> None:
    driver, fake = kernel612
    index, _ = driver.launch(vaddr())
    fake.live_pids = set()
    with pytest.raises(KernelError, match="up to 6.14"):
        driver.commit(index, vaddr(sample_us=1000))
    assert driver.state(index) == "off"


def test_bad_commit_on_73_is_rejected_and_files_restored(kernel73: Kernel) -> None:
    driver, fake = kernel73
    index, pid = driver.launch(vaddr())
    before = driver.read(index)
    fake.live_pids = set()
    with pytest.raises(KernelError) as info:
        driver.commit(index, vaddr(targets=2, sample_us=1000))
    assert info.value.errno == errno.EINVAL
    assert driver.read(index) == before and driver.pid(index) == pid


def test_targets_exiting_stop_the_kdamond_and_the_driver_says_so(kernel: Kernel) -> None:
    driver, fake = kernel
    index, pid = driver.launch(vaddr())
    assert driver.ensure_running(index) == pid
    fake.kill_targets(index)
    with pytest.raises(KernelError, match="stopped by itself"):
        driver.ensure_running(index)
    assert driver.stop(index) is False
    with pytest.raises(KernelError, match="not running"):
        driver.ensure_running(index)


def test_refresh_ms_only_where_present(kernel: Kernel) -> None:
    driver, fake = kernel
    index, _ = driver.launch(vaddr())
    if fake.new:
        driver.set_refresh_ms(index, 1000)
        assert driver.read(index).refresh_ms == 1000
        assert driver.claim(index).value == "owned"
    else:
        with pytest.raises(FeatureMissingError, match="6.17"):
            driver.set_refresh_ms(index, 1000)


def test_features_from_file_presence(kernel: Kernel) -> None:
    driver, fake = kernel
    empty = driver.features()
    assert empty.min_version is None and empty.layered_filters is None and empty.state_keywords == ()
    assert empty.knows("update_schemes_tried_regions") is None and empty.knows("update_schemes_stats") is True
    driver.apply(0, RICH)
    feats = driver.features()
    assert feats.avail_operations == ("vaddr", "fvaddr", "paddr")
    assert feats.layered_filters is fake.new and feats.intervals_goal is fake.new
    assert feats.has("tried_regions", "total_bytes") is True
    assert ("update_tuned_intervals" in feats.state_keywords) is fake.new
    assert feats.knows("update_tuned_intervals") is fake.new and feats.knows("update_schemes_tried_bytes") is True
    assert "update_schemes_effective_quotas" in feats.state_keywords
    table = feats.as_dict()
    assert table["kdamond/refresh_ms"] is fake.new and table["quotas/effective_bytes"] is True


def test_release_unconfigures_and_forgets(kernel: Kernel) -> None:
    driver, fake = kernel
    index, _ = driver.launch(vaddr())
    with pytest.raises(BusyError):
        driver.release(index)
    driver.stop(index)
    driver.release(index)
    assert driver.claim(index).value == "free"
    assert driver.owners.get(driver.root, index) is None
    assert driver.allocate() == index
