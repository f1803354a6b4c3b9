"""A machine with DAMON in use, emulated for the exporter's host tests.

* ``sysfs:0``: kdamon's paddr kdamond with a stat scheme, its stats and tried regions;
* ``sysfs:1``: another tool's vaddr kdamond;
* ``module:damon_stat``: DAMON_STAT running (its parameters as plain files);
* a fake tracefs whose instances hold synthesized ``damon_aggregated`` pages
  for each kdamond's pid (the kernel filters an instance's events on the pid).

The kdamonds' pids are processes that live as long as the test (this one,
a sleeping child, init): a watch ends when its kdamond's process is gone.
They must differ: an instance's pages are the pid's.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import attrs
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from fake_machine import RoutedFs  # tests/kernel, see conftest.py
from fake_tracefs import FakeTracefs
from kdamon.backend.host import Host, HostPaths
from kdamon.exporter import AccessWatches, DamonCollector
from kdamon.model import AccessPattern, Context, Intervals, Kdamond, Region, Scheme, Target
from kdamon.model.access import Temperature
from kdamon.trace.events import AGGREGATED, INTERVALS_TUNE
from kdamon.trace.synth import pages

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
MiB = 1 << 20

PADDR = Kdamond(
    contexts=(
        Context(
            ops="paddr",
            intervals=Intervals(sample_us=10_000, aggr_us=200_000, update_us=1_000_000),
            targets=(Target(regions=(Region(0x100000, 0x40000000),)),),
            schemes=(Scheme(action="stat", access_pattern=AccessPattern()),),
        ),
    )
)
VADDR = Kdamond(contexts=(Context(ops="vaddr", targets=(Target(pid=4242),)),))
IDLE_MS = [str(10 * p - 100) for p in range(101)]  # -100 ... 900 ms

# sysfs:0's last aggregation (sampling 10 ms, aggregation 200 ms: at most 20 accesses):
# 1 MiB hot (20/20), 2 MiB warm (4/20), 16 MiB cold (idle 30 x 200 ms = 6 s), 1 MiB warm (idle 0.4 s)
OWN_REGIONS = [
    (0x100000, 0x200000, 20, 0),
    (0x200000, 0x400000, 4, 2),
    (0x400000, 0x1400000, 0, 30),
    (0x1400000, 0x1500000, 0, 2),
]


def aggregations(
    regions: list[tuple[int, int, int, int]], times_ns: list[int]
) -> list[tuple[int, str, tuple[int, ...]]]:
    """``damon_aggregated`` events of target 0: one aggregation of ``regions`` at each time."""
    return [(t + i, AGGREGATED, (0, len(regions), *region)) for t in times_ns for i, region in enumerate(regions)]


def trace_pages(pids: Mapping[str, int]) -> dict[int, bytes]:
    """The ring-buffer contents of each kdamond pid's instance."""
    own_first = [(start, end, 0, 0) for start, end, _, _ in OWN_REGIONS]  # an older aggregation: not the latest
    own = aggregations(own_first, [1_000_000_000]) + aggregations(OWN_REGIONS, [1_200_000_000])
    foreign = aggregations([(0x1000, 0x3000, 20, 5), (0x3000, 0x9000, 0, 50)], [1_000_000_000])
    # DAMON_STAT tunes its intervals: the first aggregation is not shown, the one after a tune event is
    stat = aggregations([(0, 64 * MiB, 0, 10), (64 * MiB, 96 * MiB, 1, 0)], [1_000_000_000, 3_000_000_000])
    stat.insert(2, (2_000_000_000, INTERVALS_TUNE, (50_000,)))
    return {
        pids["sysfs:0"]: b"".join(pages(own, pids["sysfs:0"])),
        pids["sysfs:1"]: b"".join(pages(foreign, pids["sysfs:1"])),
        pids["module:damon_stat"]: b"".join(pages(stat, pids["module:damon_stat"])),
    }


@attrs.frozen
class Fleet:
    base: Path
    fs: RoutedFs
    host: Host

    @property
    def instances(self) -> list[str]:
        return sorted(p.name for p in (self.base / "tracing" / "instances").iterdir())

    def damon_files(self) -> dict[str, bytes]:
        """DAMON's sysfs tree and the module parameters, byte by byte."""
        return {
            str(p): p.read_bytes()
            for root in (self.base / "admin", self.base / "module")
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }


@contextlib.contextmanager
def make_fleet(base: Path) -> Iterator[Fleet]:
    """The machine, while another tool's kdamond (a sleeping child) lives."""
    other_tool = subprocess.Popen(["sleep", "3600"])
    try:
        yield _make_fleet(base, {"sysfs:0": os.getpid(), "sysfs:1": other_tool.pid, "module:damon_stat": 1})
    finally:
        other_tool.kill()
        other_tool.wait()


def _make_fleet(base: Path, pids: Mapping[str, int]) -> Fleet:
    tracing = FakeTracefs(base / "tracing", cpus=1)
    fs = RoutedFs(base / "admin", tracing, trace_pages(pids))
    paths = HostPaths.under(base)
    fs.write(fs.base / "kdamonds" / "nr_kdamonds", b"2")  # both directories, none running
    own = Host(paths, fs=fs).sysfs
    own.apply(0, PADDR)
    fs._next_pid = pids["sysfs:0"] - 1  # the kdamonds' threads: processes that live as long as the test
    own.start(0)
    fs.stats[0] = (12, 4096 * 12, 3, 4096 * 3, 1)
    fs.tried[0] = OWN_REGIONS
    own.update_schemes_stats(0)
    own.update_tried_regions(0)
    other = Host(attrs.evolve(paths, state_dir=base / "other-run"), fs=fs).sysfs
    other.apply(1, VADDR)
    fs._next_pid = pids["sysfs:1"] - 1
    other.start(1)
    params = base / "module" / "damon_stat" / "parameters"
    params.mkdir(parents=True)
    for name, value in {
        "enabled": "Y",
        "kdamond_pid": str(pids["module:damon_stat"]),
        "estimated_memory_bandwidth": "123456",
        "aggr_interval_us": "250000",
        "memory_idle_ms_percentiles": ",".join(IDLE_MS),
    }.items():
        (params / name).write_text(value + "\n")
    fs.writes.clear()
    tracing.writes.clear()
    return Fleet(base, fs, Host(paths, fs=fs))


def scrape(collector: DamonCollector) -> Samples:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return parse(generate_latest(registry).decode())


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def get(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


@attrs.define
class Exporting:
    collector: DamonCollector
    access: AccessWatches
    lines: list[str]

    def scrape_until(self, ready: Callable[[Samples], bool], timeout_s: float = 60) -> Samples:
        """Scrape until ``ready`` holds (the watches read their pages in background threads)."""
        deadline = time.monotonic() + timeout_s
        samples = scrape(self.collector)
        while not ready(samples) and time.monotonic() < deadline:
            time.sleep(0.05)
            samples = scrape(self.collector)
        return samples


@contextlib.contextmanager
def exporting(host: Host, *, trace: bool = True, retry_s: float = 60) -> Iterator[Exporting]:
    """A collector with access watches on ``host`` (hot from 50%, cold after 1 s), closed on exit."""
    lines: list[str] = []
    access = AccessWatches(
        host, Temperature(hot_permil=500, cold_idle_us=1_000_000), trace=trace, report=lines.append, retry_s=retry_s
    )
    try:
        access.start()
        yield Exporting(DamonCollector(host, access=access), access, lines)
    finally:
        access.close()


def has_frames(*kdamonds: str) -> Callable[[Samples], bool]:
    """Whether a scrape has the access gauges of each of ``kdamonds``."""

    def ready(samples: Samples) -> bool:
        found = {dict(labels)["kdamond"] for name, labels in samples if name == "damon_hot_bytes"}
        return set(kdamonds) <= found

    return ready
