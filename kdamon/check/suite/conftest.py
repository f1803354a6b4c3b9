"""Shared fixtures of the conformance suite (the workload and driver fixtures come from kdamon's pytest plugin)."""

from __future__ import annotations

import platform
import subprocess
from collections.abc import Callable, Iterator

import pytest

from kdamon.check.abi import parse_release
from kdamon.check.harness import RawTree
from kdamon.kernel.ownership import OwnershipRegistry
from kdamon.kernel.sysfs import SysfsDriver
from kdamon.testing.guest import in_guest
from kdamon.testing.workloads import Workload, start

Version = tuple[int, int]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = None
    if not in_guest():
        reason = "the conformance suite writes kernel DAMON files: run it in a guest with kdamon check --kernel NAME"
    elif not RawTree().exists("kdamonds/nr_kdamonds"):
        reason = f"this kernel ({platform.release()}) has no DAMON sysfs interface (Linux 5.18+, CONFIG_DAMON_SYSFS)"
    if reason is not None:
        for item in items:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def trace_keepalive(raw: RawTree) -> Iterator[None]:
    """Keep DAMON's trace events enabled, twice over, from the first check that traces to the end.

    Each tracepoint calls its probe through an inline static call, which the
    kernel re-patches whenever the probe count goes 0->1->2 and back.  Under
    TCG with several vCPUs that live patching sometimes leaves a stale int3
    that another vCPU executes ("Oops: int3" in __schedule).  With two idle
    private instances holding the events (filtered to pid 0: they record
    nothing), each check's own trace session changes no kernel text.
    """
    from kdamon.errors import KdamonError
    from kdamon.kernel.tracefs import TraceSession

    sessions = []
    if in_guest() and raw.exists("kdamonds/nr_kdamonds"):
        for n in range(2):
            session = TraceSession(0, kdamond_idx=1_000_000 + n, buffer_size_kb=4, io=raw.io)
            try:
                session.open()
            except KdamonError:
                break  # no tracefs or no DAMON events: the trace checks will say so
            sessions.append(session)
    yield
    for session in reversed(sessions):
        session.close()


@pytest.fixture(scope="session")
def version() -> Version:
    """``(major, minor)`` of the running kernel."""
    return parse_release(platform.release())


@pytest.fixture(scope="session")
def raw() -> RawTree:
    return RawTree()


@pytest.fixture(scope="module", autouse=True)
def _no_kdamonds_around_modules(raw: RawTree) -> Iterator[None]:
    """Each module starts and ends with no kdamond directory."""
    raw.reset()
    yield
    raw.reset()


@pytest.fixture(scope="module")
def raw_driver(tmp_path_factory: pytest.TempPathFactory) -> SysfsDriver:
    """A sysfs driver for module-scoped fixtures (``damon_sysfs`` is per test)."""
    return SysfsDriver(owners=OwnershipRegistry(tmp_path_factory.mktemp("owners")))


@pytest.fixture
def fresh(raw: RawTree) -> Iterator[RawTree]:
    """The raw tree with no kdamond directory, also after the test."""
    raw.reset()
    yield raw
    raw.reset()


@pytest.fixture(scope="module")
def shared_hot_cold() -> Iterator[Workload]:
    """One hot/cold workload for a whole module (its checks only need memory with a known pattern)."""
    with start("hot_cold") as workload:
        yield workload


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A process to monitor that does nothing (reaped after the test)."""
    proc = subprocess.Popen(["sleep", "600"])
    yield proc
    proc.kill()
    proc.wait()


@pytest.fixture
def need(version: Version) -> Callable[[Version, str], None]:
    """``need((6, 7), "damos_before_apply")`` skips, saying why, on a kernel older than 6.7."""

    def check(needed: Version, what: str) -> None:
        if version < needed:
            pytest.skip(f"{what} needs Linux {needed[0]}.{needed[1]}+; this kernel is {version[0]}.{version[1]}")

    return check
