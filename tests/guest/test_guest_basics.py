"""The guest itself: booted as DAMON needs it, with the tracepoints kdamon's feature detection expects.

What the kernel's DAMON files are and hold is `kdamon check`'s suite (``abi``), not asserted here again.
"""

from __future__ import annotations

from pathlib import Path

from kdamon.kernel.sysfs import SysfsDriver
from kdamon.kernel.sysfs_features import Features
from kdamon.testing.raw_sysfs import raw_write as _write

ADMIN = Path("/sys/kernel/mm/damon/admin")
EVENTS = Path("/sys/kernel/tracing/events/damon")


def _features() -> Features:
    """What this kernel's DAMON sysfs offers, seen in a scheme directory made for it and removed."""
    kdamonds = ADMIN / "kdamonds"
    _write(kdamonds / "nr_kdamonds", "1")
    try:
        _write(kdamonds / "0" / "contexts" / "nr_contexts", "1")
        _write(kdamonds / "0" / "contexts" / "0" / "schemes" / "nr_schemes", "1")
        return SysfsDriver().features()
    finally:
        _write(kdamonds / "nr_kdamonds", "0")


def test_damon_tracepoints_exist() -> None:
    events = {p.name for p in EVENTS.iterdir() if p.is_dir()}
    assert "damon_aggregated" in events
    # damos_before_apply came in 6.7 with the schemes' apply_interval_us file: the file says
    # whether this kernel must have the event
    assert ("damos_before_apply" in events) == _features().has("scheme", "apply_interval_us")


def test_guest_boots_with_pti_under_tcg() -> None:
    cmdline = Path("/proc/cmdline").read_text().split()
    with open("/proc/cpuinfo") as f:
        hypervisor_tcg = "QEMU TCG" in f.read()
    if hypervisor_tcg:
        assert "pti=on" in cmdline
