"""Telling a workload's hot area from its cold one in DAMON snapshots (guest tests)."""

from __future__ import annotations

from collections.abc import Iterable

from kdamon.model import Snapshot

# Seen accessed in at least this share of the samples of an aggregation.
MIN_HOT_SHARE = 0.1
# ... and this many times as often as the cold area.
MIN_HOT_TO_COLD = 3.0


def mean_accesses(snapshots: Iterable[Snapshot], span: tuple[int, int]) -> float:
    """The mean ``nr_accesses`` over ``span``, weighted by how many bytes of it each region covers."""
    total = weight = 0
    for snap in snapshots:
        for r in snap.states():
            overlap = min(r.end, span[1]) - max(r.start, span[0])
            if overlap > 0:
                total += r.nr_accesses * overlap
                weight += overlap
    if weight == 0:
        raise AssertionError(f"no region covered {span[0]:#x}-{span[1]:#x}")
    return total / weight


def assert_hot_stands_out(hot: float, cold: float, max_nr_accesses: int, who: str = "") -> None:
    """The hot area's mean ``nr_accesses`` is a real share of the possible ones and well above the cold's.

    Under TCG on two shared cores the workload's loop and the sampling slow
    down unevenly, so the hot area scores anywhere from about a quarter to all
    of ``max_nr_accesses``: a fixed gap (hot > cold + 5) fails at random, a
    share of the maximum and a ratio to the cold area do not.
    """
    what = f"{who + ': ' if who else ''}hot {hot:.2f}, cold {cold:.2f} of {max_nr_accesses} possible"
    assert hot >= MIN_HOT_SHARE * max_nr_accesses, f"the hot area is hardly seen accessed ({what})"
    assert hot > MIN_HOT_TO_COLD * cold, f"the hot area does not stand out from the cold one ({what})"
