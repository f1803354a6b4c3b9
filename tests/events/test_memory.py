"""Physical memory ranges from /proc/iomem, and following memory hotplug events."""

from __future__ import annotations

import threading
import time
import types
from collections.abc import Callable

import pytest

from kdamon.errors import ConfigError, KernelError
from kdamon.events.memory import paddr_regions, system_ram_ranges, with_paddr_regions
from kdamon.events.uevents import MemoryEvent, PaddrFollower, memory_event, udev_memory_observer
from kdamon.model import Context, Kdamond, Region, Scheme, Target

# A 1 GiB q35 guest after a 256 MiB pc-dimm was hot-added.
IOMEM = """\
00000000-00000fff : Reserved
00001000-0009fbff : System RAM
0009fc00-0009ffff : Reserved
000f0000-000fffff : Reserved
  000f0000-000fffff : System ROM
00100000-3ffdffff : System RAM
  0e000000-0f0fffff : Kernel code
  0f200000-0fb7ffff : Kernel rodata
3ffe0000-3fffffff : Reserved
b0000000-bfffffff : PCI MMCONFIG 0000 [bus 00-ff]
100000000-10fffffff : System RAM
140000000-17fffffff : Persistent Memory
  140000000-17fffffff : dax0.0
    140000000-17fffffff : System RAM (kmem)
"""

HIDDEN = """\
00000000-00000000 : Reserved
00000000-00000000 : System RAM
00000000-00000000 : System RAM
"""


def test_system_ram_ranges_are_end_exclusive_and_include_nested_kmem() -> None:
    assert system_ram_ranges(IOMEM) == [
        (0x1000, 0x9FC00),
        (0x100000, 0x3FFE0000),
        (0x100000000, 0x110000000),
        (0x140000000, 0x180000000),
    ]


def test_hidden_addresses_ask_for_root() -> None:
    with pytest.raises(KernelError, match="as root"):
        system_ram_ranges(HIDDEN)


def test_paddr_regions_skip_the_low_megabyte_and_join_adjacent_ranges() -> None:
    ranges = [(0x1000, 0x9FC00), (0x100000, 0x40000000), (0x40000000, 0x48000000), (0x100000000, 0x110000000)]
    assert paddr_regions(ranges) == (Region(0x100000, 0x48000000), Region(0x100000000, 0x110000000))


def test_paddr_regions_without_big_enough_ram_refuse() -> None:
    with pytest.raises(KernelError, match="give the regions explicitly"):
        paddr_regions([(0x1000, 0x9FC00)])


def test_with_paddr_regions_replaces_only_the_paddr_target() -> None:
    paddr = Context(ops="paddr", targets=(Target(regions=(Region(0x100000, 0x40000000),)),), schemes=(Scheme(),))
    kdamond = Kdamond(contexts=(paddr,), refresh_ms=100)
    grown = (Region(0x100000, 0x40000000), Region(0x100000000, 0x110000000))
    updated = with_paddr_regions(kdamond, grown)
    assert updated.contexts[0].targets[0].regions == grown
    assert updated.contexts[0].schemes == paddr.schemes and updated.refresh_ms == 100
    vaddr = Kdamond(contexts=(Context(ops="vaddr", targets=(Target(pid=1),)),))
    assert with_paddr_regions(vaddr, grown) == vaddr


def test_with_paddr_regions_still_validates() -> None:
    kdamond = Kdamond(contexts=(Context(ops="paddr", targets=(Target(),)),))
    overlapping = (Region(0, 0x200000), Region(0x100000, 0x300000))
    with pytest.raises(ConfigError):
        with_paddr_regions(kdamond, overlapping)


def _device(action: str, sys_name: str) -> object:
    return types.SimpleNamespace(action=action, sys_name=sys_name, device_path=f"/devices/system/memory/{sys_name}")


def test_memory_event_from_a_udev_device() -> None:
    assert memory_event(_device("online", "memory32")) == MemoryEvent("online", 32, "/devices/system/memory/memory32")
    assert memory_event(_device("change", "memory32")) is None
    assert memory_event(_device("add", "memory")) == MemoryEvent("add", None, "/devices/system/memory/memory")


class FakeObserver:
    """Stands for pyudev's MonitorObserver: the test delivers events by hand."""

    def __init__(self, handler: object) -> None:
        self.handler = handler
        self.started = self.stopped = False

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.stopped = True


BASE: tuple[Region, ...] = (Region(0x100000, 0x40000000),)
GROWN: tuple[Region, ...] = BASE + (Region(0x100000000, 0x110000000),)


def _follower(
    ram: list[tuple[Region, ...]], update: Callable[[tuple[Region, ...]], None], settle_s: float = 10.0
) -> tuple[PaddrFollower, list[FakeObserver]]:
    observers: list[FakeObserver] = []

    def observe(handler: object) -> FakeObserver:
        observers.append(FakeObserver(handler))
        return observers[-1]

    follower = PaddrFollower(update, regions=lambda: ram[0], observe=observe, settle_s=settle_s)
    return follower, observers


def test_follower_updates_on_add_and_remove_only_when_regions_change() -> None:
    ram = [BASE]
    updates: list[tuple[Region, ...]] = []
    follower, observers = _follower(ram, updates.append)
    with follower:
        (observer,) = observers
        assert observer.started and follower.regions == BASE
        deliver = observer.handler
        ram[0] = GROWN
        deliver(MemoryEvent("add", 32, "/devices/system/memory/memory32"))  # type: ignore[operator]
        deliver(MemoryEvent("online", 32, "/devices/system/memory/memory32"))  # type: ignore[operator]
        assert follower.wait_updates(1, timeout=0)
        ram[0] = BASE
        deliver(MemoryEvent("offline", 32, "/devices/system/memory/memory32"))  # type: ignore[operator]
        deliver(MemoryEvent("remove", 32, "/devices/system/memory/memory32"))  # type: ignore[operator]
    assert observer.stopped
    assert updates == [GROWN, BASE]
    assert follower.nr_updates == 2 and [e.action for e in follower.events] == ["add", "online", "offline", "remove"]


def test_follower_rereads_after_a_remove_announced_before_the_range_is_released() -> None:
    # The kernel sends a block's remove uevent before it drops the range from /proc/iomem.
    ram = [GROWN]
    updates: list[tuple[Region, ...]] = []
    follower, observers = _follower(ram, updates.append)
    with follower:
        observers[0].handler(MemoryEvent("remove", 32, "x"))  # type: ignore[operator]
        assert follower.nr_updates == 0
        release = threading.Timer(0.05, lambda: ram.__setitem__(0, BASE))
        release.start()
        assert follower.wait_updates(1, timeout=30)
        release.join()
    assert updates == [BASE]


def _wait_for_the_settle_window_to_close() -> None:
    """Until the follower's re-reading thread has ended (it ends when its window closes)."""
    deadline = time.monotonic() + 30  # a safety net against a hang
    while any(t.name == "kdamon-iomem-settle" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the settle thread did not end"
        time.sleep(0.005)


def test_follower_rereads_only_within_the_settle_window() -> None:
    ram = [GROWN]
    follower, observers = _follower(ram, lambda regions: None, settle_s=0.02)
    with follower:
        observers[0].handler(MemoryEvent("remove", 32, "x"))  # type: ignore[operator]
        _wait_for_the_settle_window_to_close()
        ram[0] = BASE
        assert not follower.wait_updates(1, timeout=0)  # nobody re-reads any more
        observers[0].handler(MemoryEvent("offline", 32, "x"))  # type: ignore[operator]
        assert follower.wait_updates(1, timeout=0)  # any later event still catches up


def test_follower_reports_a_failed_update() -> None:
    ram = [BASE]

    def refuse(regions: tuple[Region, ...]) -> None:
        raise KernelError("commit refused")

    follower, observers = _follower(ram, refuse)
    follower.start()
    ram[0] = GROWN
    observers[0].handler(MemoryEvent("add", 32, "x"))  # type: ignore[operator]
    with pytest.raises(KernelError, match="commit refused"):
        follower.wait_updates(1, timeout=0)
    with pytest.raises(KernelError, match="commit refused"):
        follower.stop()


def test_the_real_kernel_uevent_socket_opens() -> None:
    try:
        observer = udev_memory_observer(lambda event: None)
    except KernelError as exc:
        pytest.skip(f"no kernel uevent socket here: {exc}")
    observer.start()
    observer.stop()
