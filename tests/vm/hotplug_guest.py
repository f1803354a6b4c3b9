"""Guest side of test_hotplug.py: a paddr kdamond whose regions follow memory hotplug.

Run as ``python3 hotplug_guest.py`` inside a kdamon guest booted with
hotplug room.  It starts a paddr kdamond through the sysfs driver, prints its
monitored ranges, says READY-FOR-HOTPLUG, waits until a PaddrFollower has
committed the grown regions, prints them, says READY-FOR-UNPLUG, waits for
the shrunk regions and prints them.  Exit 0 when both changes were seen.
"""

from __future__ import annotations

import sys

from kdamon.events.memory import paddr_regions, with_paddr_regions
from kdamon.events.uevents import PaddrFollower
from kdamon.kernel.sysfs import SysfsDriver
from kdamon.model import Context, Kdamond, Region, Scheme, Target

WAIT_S = 120.0


def monitored(driver: SysfsDriver, index: int) -> list[tuple[int, int]]:
    """The ranges the kdamond monitors now: its tried regions, adjacent ones joined."""
    driver.update_tried_regions(index)
    _total, regions = driver.tried_regions(index, 0)
    ranges: list[list[int]] = []
    for r in regions:
        if ranges and ranges[-1][1] == r.start:
            ranges[-1][1] = r.end
        else:
            ranges.append([r.start, r.end])
    return [(start, end) for start, end in ranges]


def show(tag: str, ranges: list[tuple[int, int]] | tuple[Region, ...]) -> None:
    pairs = [(r.start, r.end) if isinstance(r, Region) else r for r in ranges]
    print(tag, " ".join(f"{start:#x}-{end:#x}" for start, end in pairs), flush=True)


def main() -> int:
    driver = SysfsDriver()
    config = [
        Kdamond(
            contexts=(
                Context(ops="paddr", targets=(Target(regions=paddr_regions()),), schemes=(Scheme(action="stat"),)),
            )
        )
    ]
    index, _pid = driver.launch(config[0])

    def commit(regions: tuple[Region, ...]) -> None:
        show("FOLLOWER-COMMIT", regions)
        config[0] = with_paddr_regions(config[0], regions)
        driver.commit(index, config[0])

    try:
        with PaddrFollower(commit) as follower:
            show("REGIONS-BEFORE", monitored(driver, index))
            print("READY-FOR-HOTPLUG", flush=True)
            if not follower.wait_updates(1, WAIT_S):
                print("no memory was added", flush=True)
                return 1
            show("REGIONS-GROWN", monitored(driver, index))
            print("READY-FOR-UNPLUG", flush=True)
            if not follower.wait_updates(2, WAIT_S):
                print("the added memory was not removed", flush=True)
                return 1
            show("REGIONS-SHRUNK", monitored(driver, index))
            print("EVENTS", " ".join(f"{e.action}:{e.block}" for e in follower.events), flush=True)
    finally:
        driver.stop(index)
        driver.release(index)
    return 0


if __name__ == "__main__":
    sys.exit(main())
