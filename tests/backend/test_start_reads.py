"""Starting a kdamond reads about as much as it writes: counted on the emulated kernel.

``kdamon start`` asks ``choose_backend`` (which asks the driver for a free slot and the
operations sets) and then the backend starts the kdamond (the driver allocates, stages,
records its ownership and writes ``on``).  Every ``read`` of a DAMON file is counted through
a wrapper of the emulated kernel's system calls; the writes are the kernel's own log.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from backend_fixtures import fake_host
from fake_damon import FakeDamonFs
from kdamon.backend.choose import choose_backend
from kdamon.backend.host import Host
from kdamon.backend.types import MonitorRequest
from kdamon.model import AccessPattern, Context, Kdamond, Quota, Region, Scheme, Target

KDAMOND = Kdamond(
    contexts=(
        Context(
            targets=(Target(pid=4242, regions=(Region(0x10000, 0x20000),)),),
            schemes=(
                Scheme(action="pageout", access_pattern=AccessPattern(sz_min=4096, age_min=50)),
                Scheme(quota=Quota(bytes=1 << 20, reset_interval_ms=1000)),
            ),
        ),
    )
)


class CountingFs:
    """The emulated kernel, counting the reads of each file."""

    def __init__(self, fake: FakeDamonFs) -> None:
        self.fake = fake
        self.reads: Counter[str] = Counter()

    def read(self, path: Path) -> str:
        self.reads[self.fake.rel(path)] += 1
        return self.fake.read(path)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fake, name)


def _start(host: Host, fake: FakeDamonFs) -> tuple[Counter[str], int]:
    """The reads of each file and the number of writes of choosing a backend and starting."""
    counting = CountingFs(fake)
    host = Host(host.paths, fs=counting)
    fake.writes.clear()
    backend, _ = choose_backend(MonitorRequest(KDAMOND), "auto", host=host)
    kid, pid = backend.start(KDAMOND)
    reads, writes = Counter(counting.reads), len(fake.writes)
    assert backend.name == "sysfs" and pid == host.sysfs.pid(kid.index) and host.sysfs.state(kid.index) == "on"
    return reads, writes


@pytest.mark.parametrize("version", ["6.12", "7.3"])
def test_starting_reads_at_most_one_and_a_half_times_what_it_writes(tmp_path: Path, version: str) -> None:
    counted, writes = _start(*fake_host(tmp_path, version))
    reads = sum(counted.values())
    assert writes > 30
    assert reads <= 1.5 * writes, counted.most_common(8)
    # nr_kdamonds: once to find a slot, once under the lock; the rest once at most (the fingerprint)
    assert counted["kdamonds/nr_kdamonds"] <= 2
    assert max(n for path, n in counted.items() if path != "kdamonds/nr_kdamonds") == 1


def test_reusing_a_free_directory_beside_a_running_foreign_kdamond(tmp_path: Path) -> None:
    host, fake = fake_host(tmp_path, "6.12")
    k = fake.base / "kdamonds"
    for path, value in (
        ("nr_kdamonds", "2"),
        ("0/contexts/nr_contexts", "1"),
        ("0/contexts/0/targets/nr_targets", "1"),
        ("0/contexts/0/targets/0/pid_target", "4242"),
        ("0/state", "on"),
    ):
        fake.write(k / path, value.encode())  # another tool's running kdamond 0; 1 is free
    counted, writes = _start(host, fake)
    assert not any(path.startswith("kdamonds/0/") for path, _ in fake.writes)
    assert sum(counted.values()) <= 1.5 * writes, counted.most_common(8)
