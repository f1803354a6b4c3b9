"""Memory hotplug in a real guest: paddr regions grow with a pc-dimm and shrink without it.

The host hot-adds and removes the DIMM over QMP (qemu.qmp) while the guest
(hotplug_guest.py) runs a paddr kdamond kept current by a PaddrFollower.
Guest and host meet on console lines: the guest prints READY-FOR-HOTPLUG and
READY-FOR-UNPLUG, the host acts on each.
"""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from kdamon.vm import run

pytestmark = pytest.mark.skipif(
    shutil.which("qemu-system-x86_64") is None, reason="QEMU is not installed (scripts/test.sh installs it)"
)
qmp_legacy = pytest.importorskip("qemu.qmp.legacy", reason="qemu.qmp is not installed (pip install qemu.qmp)")

GUEST_SCRIPT = Path(__file__).with_name("hotplug_guest.py")
DIMM_BYTES = 256 << 20
WAIT_S = 300.0  # safety nets against a guest that died, not measured bounds


def _wait(event: threading.Event, qmp: object) -> None:
    """Wait for ``event``; give up when QEMU is gone (a QMP command fails then)."""
    for _ in range(int(WAIT_S)):
        if event.wait(1.0):
            return
        qmp.cmd("query-status")  # type: ignore[attr-defined]
    raise TimeoutError("the guest never asked for the next hotplug step")


def _hotplug(ready: threading.Event, unplug: threading.Event) -> Callable[[Path], None]:
    def client(socket: Path) -> None:
        qmp = qmp_legacy.QEMUMonitorProtocol(str(socket))
        qmp.connect()
        try:
            _wait(ready, qmp)
            qmp.cmd("object-add", **{"qom-type": "memory-backend-ram", "id": "hotmem0", "size": DIMM_BYTES})
            qmp.cmd("device_add", driver="pc-dimm", id="dimm0", memdev="hotmem0")
            _wait(unplug, qmp)
            qmp.cmd("device_del", id="dimm0")
            while True:  # the guest ejects the DIMM asynchronously
                event = qmp.pull_event(wait=WAIT_S)
                if event and event.get("event") == "DEVICE_DELETED" and event["data"].get("device") == "dimm0":
                    break
            qmp.cmd("object-del", id="hotmem0")
        finally:
            qmp.close()

    return client


def _ranges(lines: list[str], tag: str) -> list[tuple[int, int]]:
    for line in lines:
        if line.startswith(tag + " "):
            return [(int(a, 16), int(b, 16)) for a, b in re.findall(r"(0x[0-9a-f]+)-(0x[0-9a-f]+)", line)]
    raise AssertionError(f"the guest printed no {tag} line")


def test_paddr_regions_follow_a_hot_added_and_removed_dimm() -> None:
    ready, unplug = threading.Event(), threading.Event()
    lines: list[str] = []

    def output(line: str) -> None:
        lines.append(line.strip())
        if line.startswith("READY-FOR-HOTPLUG"):
            ready.set()
        elif line.startswith("READY-FOR-UNPLUG"):
            unplug.set()

    result = run(
        ["python3", str(GUEST_SCRIPT)],
        memory="1G,slots=4,maxmem=4G",
        cmdline=["memhp_default_state=online_movable"],
        qmp_client=_hotplug(ready, unplug),
        output=output,
        timeout=600,
    )
    assert result.exit_code == 0, "\n".join(lines[-30:])
    before, grown, shrunk = (_ranges(lines, t) for t in ("REGIONS-BEFORE", "REGIONS-GROWN", "REGIONS-SHRUNK"))
    added = sorted(set(grown) - set(before))
    assert len(added) == 1 and added[0][1] - added[0][0] == DIMM_BYTES, (before, grown)
    assert added[0][0] >= 4 << 30  # q35 puts hot-plugged memory above 4 GiB
    assert shrunk == before
    events = next(line for line in lines if line.startswith("EVENTS ")).split()[1:]
    assert {e.split(":")[0] for e in events} >= {"add", "online", "offline", "remove"}
