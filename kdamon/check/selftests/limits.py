"""Selftest failures that only reflect kdamon's guest, and why: they become skips that say so."""

from __future__ import annotations

from collections.abc import Sequence

from kdamon.check.results import CheckResult, Status

__all__ = ["MISSING_IN_GUEST", "TIMING_DEPENDENT", "apply_limits"]

_PACE = (
    "a workload pass under TCG emulation is slower than the 5 ms sampling interval this test assumes, "
    "so accesses are missed"
)
_GIVE_UP = (
    "under TCG emulation the kdamond runs slower than nominal, and Linux 6.2-6.13 give a tried-regions "
    "request up after two apply intervals of wall time, so the regions may never be collected"
)
# Selftests that depend on emulation-sensitive timing, and why they cannot pass reliably under TCG.
TIMING_DEPENDENT = {
    "sysfs_update_schemes_tried_regions_wss_estimation.py": _PACE,
    "damos_apply_interval.py": _PACE,
    "damon_nr_regions.py": _GIVE_UP,
    "damos_tried_regions.py": _GIVE_UP,
}
# Failures that only say the guest lacks something the test needs (matched in the test's output).
MISSING_IN_GUEST = {
    "drgn": "needs drgn and the kernel's debug information, which kdamon's guest does not provide",
}


def apply_limits(results: Sequence[CheckResult], accel: str) -> list[CheckResult]:
    """Selftest failures that only reflect the guest become skips that say why.

    Always: tests that stop because a dependency is missing from the guest
    (``MISSING_IN_GUEST``).  Under TCG: timing-dependent tests
    (``TIMING_DEPENDENT``).
    """
    out = []
    for r in results:
        test = r.id.removeprefix("selftests.")
        why = None
        if r.status is Status.FAIL and r.group == "selftests":
            why = next((reason for word, reason in MISSING_IN_GUEST.items() if word in r.message), None)
            if why is None and accel == "tcg" and test in TIMING_DEPENDENT:
                why = f"timing-dependent, not reliable under TCG: {TIMING_DEPENDENT[test]}"
        out.append(
            r
            if why is None
            else CheckResult(r.id, r.title, Status.SKIP, f"{why} (it failed: {r.message})", r.duration_s, r.group)
        )
    return out
