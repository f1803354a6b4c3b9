"""TraceSession on a real DAMON kernel: hot memory shows up hot in the trace."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hot_cold import assert_hot_stands_out, mean_accesses
from kdamon.kernel.sysfs import SysfsDriver
from kdamon.kernel.tracefs import TraceSession
from kdamon.model import Context, Intervals, Kdamond, NrRegions, Snapshot, Target

MiB = 1 << 20
TRACEFS = Path("/sys/kernel/tracing")

# mmap a hot 8 MiB and a cold 64 MiB area (separate mappings), touch every
# page of both once, then keep touching one byte per page of the hot one.
WORKLOAD = r"""
import ctypes, json, mmap, sys, time
PAGE = mmap.PAGESIZE
hot, cold = mmap.mmap(-1, 8 << 20), mmap.mmap(-1, 64 << 20)
addr = lambda m: ctypes.addressof(ctypes.c_char.from_buffer(m))
for m in (hot, cold):
    for off in range(0, len(m), PAGE):
        m[off] = 1
print(json.dumps({"hot": [addr(hot), addr(hot) + len(hot)], "cold": [addr(cold), addr(cold) + len(cold)]}), flush=True)
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    for off in range(0, len(hot), PAGE):
        hot[off] = 2
"""


@pytest.fixture
def workload() -> Iterator[tuple[subprocess.Popen[str], dict[str, list[int]]]]:
    proc = subprocess.Popen([sys.executable, "-c", WORKLOAD, "120"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    layout = json.loads(proc.stdout.readline())
    yield proc, layout
    proc.kill()
    proc.wait()


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "text"])
def test_hot_area_has_more_accesses_than_cold(
    driver: SysfsDriver, workload: tuple[subprocess.Popen[str], dict[str, list[int]]], raw: bool
) -> None:
    proc, layout = workload
    kd = Kdamond(
        contexts=(
            Context(
                ops="vaddr",
                intervals=Intervals(sample_us=5000, aggr_us=100_000),
                nr_regions=NrRegions(10, 1000),
                targets=(Target(pid=proc.pid),),
            ),
        )
    )
    index, pid = driver.launch(kd)
    deadline = time.monotonic() + 4
    with TraceSession(pid, kdamond_idx=index, sample_us=5000, aggr_us=100_000, raw=raw) as session:
        instance = session.instance
        assert instance.exists()
        records = list(session.records(until=lambda: time.monotonic() > deadline))
        lost = session.lost_events()
    assert not instance.exists()
    assert not [n for n in os.listdir(TRACEFS / "instances") if n.startswith("kdamon-")]
    snaps = [r for r in records if isinstance(r, Snapshot)]
    assert len(snaps) >= 10 and lost == 0
    assert {s.target_idx for s in snaps} == {0} and all(s.kdamond_idx == index for s in snaps)
    late = snaps[len(snaps) // 2 :]  # after the regions adapted
    hot = mean_accesses(late, (layout["hot"][0], layout["hot"][1]))
    cold = mean_accesses(late, (layout["cold"][0], layout["cold"][1]))
    assert_hot_stands_out(hot, cold, late[0].max_nr_accesses)
    driver.stop(index)


def test_top_level_trace_buffer_is_untouched(
    driver: SysfsDriver, workload: tuple[subprocess.Popen[str], dict[str, list[int]]]
) -> None:
    proc, _ = workload
    index, pid = driver.launch(Kdamond(contexts=(Context(targets=(Target(pid=proc.pid),)),)))
    enable = TRACEFS / "events" / "damon" / "damon_aggregated" / "enable"
    deadline = time.monotonic() + 1.5
    with TraceSession(pid) as session:
        assert sum(1 for _ in session.records(until=lambda: time.monotonic() > deadline)) > 0
        assert enable.read_text().strip() == "0"
    assert "damon_aggregated" not in (TRACEFS / "trace").read_text()
    driver.stop(index)
