"""The debugfs driver against an emulated DAMON debugfs directory (fake_debugfs.py)."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from fake_debugfs import FakeDebugfs
from kdamon.errors import BusyError, FeatureMissingError, KernelError, OwnershipError
from kdamon.kernel.debugfs import DebugfsDriver
from kdamon.kernel.modules import DamonModules
from kdamon.kernel.ownership import Claim, OwnershipRegistry
from kdamon.kernel.sysfs_io import SysfsIO
from kdamon.model import (
    AccessPattern,
    Context,
    Filter,
    Intervals,
    Kdamond,
    NrRegions,
    Quota,
    QuotaWeights,
    Region,
    Scheme,
    SchemeStats,
    Target,
    Watermarks,
)

HOT = Scheme(
    action="stat",
    access_pattern=AccessPattern(sz_min=4096, nr_accesses_min=5, nr_accesses_max=20, age_max=100),
    quota=Quota(ms=10, bytes=1 << 20, reset_interval_ms=1000, weights=QuotaWeights(1, 2, 3)),
    watermarks=Watermarks(metric="free_mem_rate", interval_us=5000000, high=900, mid=500, low=100),
)
VADDR = Kdamond(
    contexts=(
        Context(
            intervals=Intervals(sample_us=1000, aggr_us=20000, update_us=500000),
            nr_regions=NrRegions(min=5, max=200),
            targets=(Target(pid=4242, regions=(Region(0x1000, 0x5000), Region(0x8000, 0x9000))), Target(pid=4343)),
            schemes=(HOT, Scheme(action="pageout")),
        ),
    )
)
PADDR = Kdamond(contexts=(Context(ops="paddr", targets=(Target(regions=(Region(1 << 20, 1 << 30),)),)),))


def make(tmp_path: Path, version: str = "6.1", release: str = "6.1.176") -> tuple[DebugfsDriver, FakeDebugfs]:
    fake = FakeDebugfs(tmp_path / "damon", version)
    driver = DebugfsDriver(
        tmp_path / "damon",
        fs=fake,
        owners=OwnershipRegistry(tmp_path / "run"),
        modules=DamonModules(tmp_path / "module", io=SysfsIO(fake)),
        kernel_release=release,
    )
    return driver, fake


@pytest.fixture
def dbg(tmp_path: Path) -> tuple[DebugfsDriver, FakeDebugfs]:
    return make(tmp_path)


def test_layout_of_6_1_and_6_9(tmp_path: Path) -> None:
    old, _ = make(tmp_path / "a")
    assert old.available()
    assert old.monitor_path().name == "monitor_on"
    assert old.deprecation_notice() is None
    new, _ = make(tmp_path / "b", "6.9", "6.9.0")
    assert new.monitor_path().name == "monitor_on_DEPRECATED"
    assert "deprecated" in (new.deprecation_notice() or "")
    assert not DebugfsDriver(tmp_path / "nothing", owners=OwnershipRegistry(tmp_path / "run")).available()


def test_apply_writes_the_kernel_formats(dbg: tuple[DebugfsDriver, FakeDebugfs]) -> None:
    driver, fake = dbg
    assert driver.apply(0, VADDR) == 0
    written = dict(fake.writes)
    assert written["target_ids"] == "4242 4343\n"
    assert written["init_regions"] == f"0 {0x1000} {0x5000}\n0 {0x8000} {0x9000}\n"
    assert written["attrs"] == "1000 20000 500000 5 200\n"
    assert written["schemes"].splitlines() == [
        "4096 18446744073709551615 5 20 0 100 5 10 1048576 1000 1 2 3 1 5000000 900 500 100",
        "0 18446744073709551615 0 4294967295 0 4294967295 2 0 0 0 0 0 0 0 0 0 0 0",
    ]
    assert [name for name, _ in fake.writes] == ["target_ids", "init_regions", "attrs", "schemes"]


@pytest.mark.parametrize("kdamond", [VADDR, PADDR], ids=["vaddr", "paddr"])
def test_read_returns_what_apply_wrote(dbg: tuple[DebugfsDriver, FakeDebugfs], kdamond: Kdamond) -> None:
    driver, _ = dbg
    driver.apply(0, kdamond)
    assert driver.read(0) == kdamond


def test_region_ids_before_5_18_are_target_ids(tmp_path: Path) -> None:
    driver, fake = make(tmp_path, "5.17", release="5.17.3")
    fake.live_pids.add(77)
    kdamond = Kdamond(contexts=(Context(targets=(Target(pid=4242), Target(pid=77, regions=(Region(0, 4096),)))),))
    driver.apply(0, kdamond)
    assert dict(fake.writes)["init_regions"] == "77 0 4096\n"
    assert driver.read(0) == kdamond


def test_unexpressible_fields_are_refused_before_any_write(dbg: tuple[DebugfsDriver, FakeDebugfs]) -> None:
    driver, fake = dbg
    kdamond = Kdamond(
        refresh_ms=100,
        contexts=(
            Context(
                ops="vaddr",
                pause=True,
                targets=(Target(pid=4242),),
                schemes=(
                    Scheme(action="lru_prio"),
                    Scheme(filters=(Filter(type="anon"),), access_pattern=AccessPattern(age_min=5, age_max=1)),
                ),
            ),
        ),
    )
    with pytest.raises(FeatureMissingError) as info:
        driver.apply(0, kdamond)
    message = str(info.value)
    for field in ("refresh_ms", "contexts[0].pause", "contexts[0].schemes[0].action",
                  "contexts[0].schemes[1].filters", "contexts[0].schemes[1].access_pattern"):  # fmt: skip
        assert field in message
    assert "sysfs" in message
    assert fake.writes == []


def test_missing_pid_is_enomem_and_changes_nothing(dbg: tuple[DebugfsDriver, FakeDebugfs]) -> None:
    driver, _ = dbg
    driver.apply(0, VADDR)
    before = driver.read(0)
    bad = Kdamond(contexts=(Context(targets=(Target(pid=999999),)),))
    with pytest.raises(KernelError) as info:
        driver.apply(0, bad)
    assert info.value.errno == errno.ENOMEM
    assert "does not exist" in str(info.value)
    assert driver.read(0) == before


def test_a_rejected_write_restores_the_previous_files(dbg: tuple[DebugfsDriver, FakeDebugfs]) -> None:
    driver, fake = dbg
    driver.apply(0, VADDR)
    before = driver.read(0)
    fake.faults["schemes"] = [errno.EINVAL]
    with pytest.raises(KernelError) as info:
        driver.apply(0, PADDR)
    assert info.value.errno == errno.EINVAL
    assert driver.read(0) == before
    assert driver.claim(0) is Claim.OWNED


def test_start_stop_and_the_dropped_targets(dbg: tuple[DebugfsDriver, FakeDebugfs]) -> None:
    driver, _ = dbg
    index, pid = driver.launch(VADDR)
    assert index == 0
    assert driver.pid(0) == pid == driver.ensure_running(0)
    assert driver.state(0) == "on" and driver.monitor_on()
    assert driver.read(0).contexts[0].targets == (Target(pid=4242), Target(pid=4343))  # no regions while on
    with pytest.raises(BusyError):
        driver.apply(0, VADDR)
    assert driver.stop(0) is True
    assert driver.state(0) == "off" and not driver.monitor_on()
    assert driver.read(0).contexts[0].targets == ()  # the kernel dropped them
    assert driver.read(0).contexts[0].schemes == VADDR.contexts[0].schemes
    assert driver.claim(0) is Claim.OWNED
    assert driver.stop(0) is False


def test_live_scheme_stats(dbg: tuple[DebugfsDriver, FakeDebugfs]) -> None:
    driver, fake = dbg
    driver.launch(VADDR)
    assert driver.scheme_stats(0) == [SchemeStats(0, 0, 0, 0, 0)] * 2
    fake.count_stats("", (3, 12288, 2, 8192, 1))
    assert driver.scheme_stats(0) == [SchemeStats(3, 12288, 2, 8192, 1)] * 2


def test_5_16_stats_report_only_the_tried_counts(tmp_path: Path) -> None:
    driver, fake = make(tmp_path, "5.16", release="5.16.20")
    driver.launch(VADDR)
    fake.count_stats("", (3, 12288))
    # unknown, not 0: 5.16 does not count applications or quota exceeds
    assert driver.scheme_stats(0) == [SchemeStats(3, 12288, None, None, None)] * 2


def test_start_is_busy_while_another_damon_user_runs(dbg: tuple[DebugfsDriver, FakeDebugfs]) -> None:
    driver, fake = dbg
    driver.apply(0, VADDR)
    fake.other_damon_running = True
    assert driver.monitor_on()  # reads on although no debugfs context runs
    assert driver.state(0) == "off"
    with pytest.raises(BusyError) as info:
        driver.start(0)
    assert "sysfs kdamond" in str(info.value)
    assert driver.pid(0) is None


def test_a_context_exiting_by_itself(dbg: tuple[DebugfsDriver, FakeDebugfs]) -> None:
    driver, fake = dbg
    driver.launch(VADDR)
    fake.exit_targets("")
    with pytest.raises(KernelError, match="stopped by itself"):
        driver.ensure_running(0)
    assert driver.stop(0) is False


def test_launch_undoes_everything_when_the_targets_are_dead(dbg: tuple[DebugfsDriver, FakeDebugfs]) -> None:
    driver, fake = dbg
    fake.live_pids.add(5555)
    original = driver.read(0)
    real_write = fake.write

    def die_at_start(path: Path, data: bytes) -> None:
        if path.name == "monitor_on":
            fake.live_pids.discard(5555)  # the target exits between the apply and the start
        real_write(path, data)

    fake.write = die_at_start  # type: ignore[method-assign]
    with pytest.raises(KernelError, match="stopped right after starting"):
        driver.launch(Kdamond(contexts=(Context(targets=(Target(pid=5555),)),)))
    assert driver.read(0) == original
    assert driver.pid(0) is None
    assert driver.claim(0) is Claim.FREE


def test_contexts_made_by_kdamon(dbg: tuple[DebugfsDriver, FakeDebugfs]) -> None:
    driver, _ = dbg
    assert driver.apply(driver.allocate(), VADDR) == 0
    assert driver.allocate() == 0  # stopped and kdamon's: reusable
    assert driver.apply(1, PADDR) == 1  # index == nr_kdamonds() makes a context
    assert driver.contexts() == ["", "kdamon1"]
    assert driver.read(1) == PADDR
    pid0 = driver.start(0)
    pid1 = driver.pid(1)
    assert pid1 is not None and pid1 != pid0
    assert driver.stop(1) is True
    assert driver.pid(0) is None and driver.pid(1) is None
    assert driver.read(1).contexts[0].targets == (Target(),)  # paddr keeps its target, not its regions
    driver.release(1)
    assert driver.contexts() == [""]
    driver.release(0)
    assert driver.read(0) == Kdamond(contexts=(Context(),))
    assert driver.claim(0) is Claim.FREE


def test_stop_fails_when_an_earlier_context_exited(dbg: tuple[DebugfsDriver, FakeDebugfs]) -> None:
    driver, fake = dbg
    driver.apply(0, VADDR)
    driver.apply(1, PADDR)
    driver.start(0)
    fake.exit_targets("")
    with pytest.raises(KernelError, match="still runs") as info:
        driver.stop(1)
    assert info.value.errno == errno.EPERM
    assert driver.pid(1) is not None


def test_foreign_contexts_are_left_alone(dbg: tuple[DebugfsDriver, FakeDebugfs]) -> None:
    driver, fake = dbg
    fake.contexts[""].targets = [4242]  # another tool configured the root context
    fake.contexts[""].regions = [[]]
    assert driver.claim(0) is Claim.FOREIGN
    assert driver.allocate() == 1
    with pytest.raises(OwnershipError):
        driver.apply(0, VADDR)
    driver.apply(1, VADDR)
    with pytest.raises(OwnershipError, match="together"):
        driver.start(1)
    assert not any(name == "monitor_on" for name, _ in fake.writes)


def test_start_refuses_a_context_without_targets(dbg: tuple[DebugfsDriver, FakeDebugfs]) -> None:
    driver, fake = dbg
    driver.apply(1, VADDR)  # creates kdamon1; the root context stays empty
    with pytest.raises(KernelError, match="no targets") as info:
        driver.start(1)
    assert info.value.errno == errno.EINVAL
    assert not any(name == "monitor_on" for name, _ in fake.writes)


def test_deprecated_monitor_file(tmp_path: Path) -> None:
    driver, fake = make(tmp_path, "6.9", "6.9.0")
    _, pid = driver.launch(VADDR)
    assert ("monitor_on_DEPRECATED", "on\n") in fake.writes
    assert driver.pid(0) == pid


def test_launch_removes_the_context_it_made_when_start_fails(dbg: tuple[DebugfsDriver, FakeDebugfs]) -> None:
    driver, fake = dbg
    fake.contexts[""].schemes = [[0] * 23]  # another tool's root context
    with pytest.raises(OwnershipError, match="together"):
        driver.launch(VADDR)
    assert driver.contexts() == [""]
    assert ("mk_contexts", "kdamon1\n") in fake.writes and ("rm_contexts", "kdamon1\n") in fake.writes
    assert not any((driver.owners.state_dir).glob("kdamond-*.json"))
