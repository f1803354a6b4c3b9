"""Guest-side helpers of the suite: raw sysfs access, timed observation, calibration.

The conformance checks test the ABI itself, so besides kdamon's driver they
need raw access that reports the kernel's errno (``RawTree``).  Monitoring
checks run a kdamond through the driver and read its snapshots from a
private tracefs instance (``observe``).  Workload-speed-dependent checks
derive their intervals from the workload's measured speed (``calibrate``).
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs

from kdamon.errors import KernelError
from kdamon.kernel.sysfs import DEFAULT_ROOT, SysfsDriver
from kdamon.kernel.sysfs_io import RetryPolicy, SysfsIO, Value
from kdamon.model import Intervals, Kdamond, Region, SchemeApply, SchemeStats, Snapshot
from kdamon.testing.raw_sysfs import stop_kdamonds
from kdamon.testing.workloads import Layout

__all__ = [
    "Calibration",
    "Observation",
    "RawTree",
    "apply_passes",
    "biggest_system_ram",
    "calibrate",
    "observe",
    "running",
    "system_ram",
    "wait_stats",
]


class RawTree:
    """Direct reads and writes below a DAMON sysfs root, reporting errnos."""

    def __init__(self, root: Path = DEFAULT_ROOT) -> None:
        self.root = root
        self.io = SysfsIO(retry=RetryPolicy(attempts=3))

    def path(self, rel: str) -> Path:
        return self.root / rel

    def exists(self, rel: str) -> bool:
        return self.io.exists(self.path(rel))

    def read(self, rel: str) -> str:
        return self.io.read_str(self.path(rel))

    def write(self, rel: str, value: Value) -> None:
        self.io.write(self.path(rel), value)

    def errno_of(self, rel: str, value: Value) -> int:
        """0 if writing ``value`` to ``rel`` succeeds, else the kernel's errno."""
        try:
            self.write(rel, value)
        except KernelError as err:
            return err.errno if err.errno is not None else -1
        return 0

    def reset(self) -> None:
        """Stop every kdamond of this tree and remove every kdamond directory."""
        stop_kdamonds(self.root)

    def populate(self, rel: str) -> None:
        """Write 1 to every writable ``nr_*`` file that reads 0, depth first (one of each child)."""
        here = self.path(rel)
        names = sorted(self.io.listdir(here))
        for name in names:
            p = here / name
            writable_count = name.startswith("nr_") and not self.io.is_dir(p) and os.stat(p).st_mode & 0o200
            if writable_count and self.io.read_str(p) == "0":
                self.io.write(p, 1)
        for name in sorted(self.io.listdir(here)):
            if self.io.is_dir(here / name):
                self.populate(f"{rel}/{name}")

    def entries(self, rel: str) -> list[tuple[str, int]]:
        """``(path, mode)`` of everything below ``rel``; numbered directories become ``N``."""
        base = self.path(rel)
        out: list[tuple[str, int]] = []
        for dirpath, dirnames, filenames in os.walk(base):
            parts = Path(dirpath).relative_to(base).parts
            prefix = "".join(("N" if p.isdigit() else p) + "/" for p in parts)
            for d in dirnames:
                out.append((prefix + ("N" if d.isdigit() else d) + "/", 0))
            for f in filenames:
                out.append((prefix + f, os.stat(Path(dirpath) / f).st_mode & 0o777))
        return out


def system_ram() -> list[Region]:
    """The "System RAM" ranges of /proc/iomem (physical addresses, readable by root), ends exclusive."""
    found = []
    for line in Path("/proc/iomem").read_text().splitlines():
        m = re.match(r"^\s*([0-9a-f]+)-([0-9a-f]+) : System RAM$", line.rstrip())
        if m and int(m[1], 16) < int(m[2], 16):
            found.append(Region(int(m[1], 16), int(m[2], 16) + 1))
    return found


def biggest_system_ram() -> Region | None:
    """The largest "System RAM" range, None if /proc/iomem shows none."""
    return max(system_ram(), key=lambda r: r.end - r.start, default=None)


@attrs.frozen
class Calibration:
    """Intervals fitted to a workload's measured speed, and a sentence saying so."""

    intervals: Intervals
    note: str

    @property
    def max_nr_accesses(self) -> int:
        return self.intervals.aggr_us // self.intervals.sample_us


def calibrate(layout: Layout, *, samples_per_aggr: int = 20, update_us: int = 3_600_000_000) -> Calibration:
    """Sample no faster than four write passes over one area (5 ms at least).

    Under TCG a pass can take longer than DAMON's default 5 ms sampling
    interval; then hot pages look cold.  ``update_us`` defaults to an hour so
    that given regions stay as they are (vaddr replaces them at each update).
    """
    sample_us = max(5000, math.ceil(4 * layout.pass_us / 1000.0) * 1000)
    intervals = Intervals(sample_us=sample_us, aggr_us=sample_us * samples_per_aggr, update_us=update_us)
    note = (
        f"calibrated: one write pass over an area takes {layout.pass_us / 1000:.2f} ms here, "
        f"so sampling every {sample_us / 1000:g} ms, aggregating every {intervals.aggr_us / 1000:g} ms"
    )
    return Calibration(intervals, note)


@attrs.frozen
class Observation:
    """What a kdamond's trace showed: every snapshot (one target) and scheme application."""

    snapshots: tuple[Snapshot, ...]
    applies: tuple[SchemeApply, ...]
    lost_events: int
    index: int
    pid: int
    elapsed_s: float

    @property
    def aggregations_per_s(self) -> float:
        """The kdamond's actual aggregation rate (trace time), 0 with fewer than two snapshots."""
        if len(self.snapshots) < 2:
            return 0.0
        span_ns = self.snapshots[-1].time_ns - self.snapshots[0].time_ns
        return (len(self.snapshots) - 1) * 1e9 / span_ns if span_ns > 0 else 0.0

    def rate_note(self, nominal_aggr_us: int) -> str:
        return (
            f"{len(self.snapshots)} aggregations in {self.elapsed_s:.1f} s, "
            f"{self.aggregations_per_s:.1f}/s (nominal {1e6 / nominal_aggr_us:.0f}/s)"
        )


def observe(
    driver: SysfsDriver,
    kdamond: Kdamond,
    *,
    aggregations: int,
    seconds: float = 0.0,
    timeout_s: float = 120.0,
    at_aggregation: int | None = None,
    action: Callable[[int], None] | None = None,
    on_snapshot: Callable[[int, int], None] | None = None,
) -> Observation:
    """Run ``kdamond`` until its trace showed ``aggregations`` snapshots and ``seconds`` passed.

    Counting aggregations rather than seconds keeps checks valid where the
    kdamond runs slower than nominal (TCG).  ``action(index)`` is called
    once, after ``at_aggregation`` snapshots, while the trace keeps being
    read (e.g. to request tried regions); ``on_snapshot(index, count)`` after
    every snapshot, with the number traced so far.  Gives up after ``timeout_s``.
    """
    from kdamon.kernel.tracefs import TraceSession

    intervals = kdamond.contexts[0].intervals
    snapshots: list[Snapshot] = []
    applies: list[SchemeApply] = []
    start = time.monotonic()
    with running(driver, kdamond) as (index, pid):

        def done() -> bool:
            now = time.monotonic() - start
            return (
                (len(snapshots) >= aggregations and now >= seconds) or now >= timeout_s or driver.state(index) != "on"
            )

        session = TraceSession(
            pid, kdamond_idx=index, sample_us=intervals.sample_us, aggr_us=intervals.aggr_us, io=driver.io
        )
        pending = action
        with session:
            for record in session.records(done):
                if isinstance(record, Snapshot):
                    snapshots.append(record)
                    if on_snapshot is not None:
                        on_snapshot(index, len(snapshots))
                elif isinstance(record, SchemeApply):
                    applies.append(record)
                if pending is not None and at_aggregation is not None and len(snapshots) >= at_aggregation:
                    todo, pending = pending, None
                    todo(index)
            lost = session.lost_events()
    return Observation(tuple(snapshots), tuple(applies), lost, index, pid, time.monotonic() - start)


def apply_passes(applies: tuple[SchemeApply, ...]) -> list[list[tuple[int, int]]]:
    """``damos_before_apply`` events cut into passes over the regions (where addresses restart)."""
    passes: list[list[tuple[int, int]]] = []
    for a in applies:
        if not passes or a.region.start <= passes[-1][-1][0]:
            passes.append([])
        passes[-1].append((a.region.start, a.region.end))
    return passes


@contextmanager
def running(driver: SysfsDriver, kdamond: Kdamond) -> Iterator[tuple[int, int]]:
    """Launch ``kdamond``; ``(index, pid)``; stopped and released afterwards."""
    index, pid = driver.launch(kdamond)
    try:
        yield index, pid
    finally:
        driver.stop(index)
        driver.release(index)


def wait_stats(
    driver: SysfsDriver, index: int, until: Callable[[SchemeStats], bool], *, scheme: int = 0, timeout_s: float = 30.0
) -> SchemeStats:
    """Refresh scheme ``scheme``'s stats until ``until(stats)``; the last stats either way."""
    deadline = time.monotonic() + timeout_s
    while True:
        driver.update_schemes_stats(index)
        stats = driver.scheme_stats(index)[scheme]
        if until(stats) or time.monotonic() > deadline:
            return stats
        time.sleep(0.2)
