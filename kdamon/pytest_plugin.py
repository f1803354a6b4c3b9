"""kdamon's pytest plugin (entry point ``pytest11``): DAMON fixtures and guest-kernel tests.

Fixtures:

* ``damon``: a ready Monitor API backend (``kdamon.backend``): kernel DAMON
  through sysfs inside a kdamon guest (``KDAMON_GUEST=1``), kdamon's engine
  anywhere else.  Every kdamond it started is stopped after the test.
* ``damon_sysfs``: the kernel's sysfs driver (``kdamon.kernel.sysfs``) in a
  guest; skipped elsewhere (the host's DAMON is never touched).
* ``hot_cold_workload``, ``stairs_workload``, ``zigzag_workload``: a running
  workload process with a known access pattern (``kdamon.testing.workloads``).

Marker ``@pytest.mark.damon_guest(kernel="debian-6.12")``: on the host the
test is run inside a QEMU guest booted from that kernel (``kdamon.vm.run``)
and its outcome reported here; inside a guest it runs as it is.  One guest
per kernel runs all the session's marked tests for that kernel: the first
such test to come up boots it, with every later one not run yet, and each
test's result is reported when pytest reaches that test.

This module is loaded by every pytest run of anyone who installed kdamon,
so it imports nothing of kdamon at import time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from itertools import dropwhile
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from kdamon.backend.types import Backend
    from kdamon.check.results import CheckResult
    from kdamon.kernel.sysfs import SysfsDriver
    from kdamon.testing.workloads import Workload

MARKER = "damon_guest"
DEFAULT_KERNEL = "debian-6.12"
# Guest results of the session's marked tests not reported yet, by nodeid.
_GUEST_RESULTS = pytest.StashKey[dict[str, "CheckResult"]]()


def _in_guest() -> bool:
    """:func:`kdamon.testing.guest.in_guest`, imported on first use."""
    from kdamon.testing.guest import in_guest

    return in_guest()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kdamon", "kdamon DAMON fixtures and guest tests")
    group.addoption(
        "--damon-guest-kernel",
        metavar="NAME|PATH",
        help=f"run every @{MARKER} test on this kernel instead of the marker's",
    )
    group.addoption(
        "--damon-guest-timeout",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help=f"seconds a @{MARKER} test may take in its guest, boot included (default 600); "
        "a guest that runs N tests gets N times this",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(kernel='{DEFAULT_KERNEL}'): run this test inside a QEMU guest booted from a "
        "kdamon vm-images kernel (a recipe name or a bzImage path) when collected on the host",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    """On the host, report a ``damon_guest`` test's outcome in its guest (booting the guest if need be)."""
    kernel = _guest_kernel(item)
    if kernel is None:
        return None
    ihook = item.ihook
    ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    results = item.session.stash.setdefault(_GUEST_RESULTS, {})
    if item.nodeid not in results:
        results.update(_run_in_guest(item, kernel, results))
    for report in _reports(item, results.pop(item.nodeid), kernel):
        ihook.pytest_runtest_logreport(report=report)
    ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


def _guest_kernel(item: pytest.Item) -> str | None:
    """The kernel a test is sent to from here; None when it runs here (unmarked, in a guest, or skipped)."""
    marker = item.get_closest_marker(MARKER)
    if marker is None or _in_guest() or _skipped_here(item):
        return None
    kernel = item.config.getoption("--damon-guest-kernel") or marker.kwargs.get(
        "kernel", marker.args[0] if marker.args else DEFAULT_KERNEL
    )
    return str(kernel)


def _run_in_guest(item: pytest.Item, kernel: str, done: Mapping[str, CheckResult]) -> dict[str, CheckResult]:
    """Run ``item`` and every later test of the session bound for ``kernel`` in one guest; results by nodeid.

    Tests in ``done`` already have a result.  A guest's results carry check ids
    (``kdamon.check.emit.check_identity``), so a test whose id is taken in this
    guest (a same-named file elsewhere) waits for a guest of its own.
    """
    from kdamon.check import host
    from kdamon.check.emit import check_identity

    batch = {check_identity(item)[0]: item}
    for other in dropwhile(lambda test: test is not item, item.session.items):
        if other.nodeid not in done and _guest_kernel(other) == kernel:
            batch.setdefault(check_identity(other)[0], other)
    results = host.run_nodes_in_guest(
        {check_id: _target(test) for check_id, test in batch.items()},
        rootdir=item.config.rootpath,
        kernel=kernel,
        timeout=float(item.config.getoption("--damon-guest-timeout")) * len(batch),
    )
    return {test.nodeid: results[check_id] for check_id, test in batch.items()}


def _target(item: pytest.Item) -> str:
    """The pytest argument that selects ``item`` in the guest (its file's absolute path, then the rest of its nodeid)."""
    _, sep, rest = item.nodeid.partition("::")
    return str(item.path.resolve()) + sep + rest


def _skipped_here(item: pytest.Item) -> bool:
    """Whether a skip or true skipif marker skips the test anyway (then pytest reports it as usual)."""
    try:
        from _pytest.skipping import evaluate_skip_marks
    except ImportError:  # pytest moved it: honour plain skip markers
        return item.get_closest_marker("skip") is not None
    return evaluate_skip_marks(item) is not None


def _reports(item: pytest.Item, result: CheckResult, kernel: str) -> list[pytest.TestReport]:
    """Setup/call/teardown reports that tell pytest what happened in the guest."""
    from kdamon.check.results import Status

    def report(when: str, outcome: str, longrepr: Any = None, duration: float = 0.0) -> pytest.TestReport:
        return pytest.TestReport(
            item.nodeid,
            item.location,
            {k: 1 for k in item.keywords},
            outcome,  # type: ignore[arg-type]
            longrepr,
            when,  # type: ignore[arg-type]
            sections=[("kdamon guest", f"kernel {kernel}: {result.status.value} {result.message}".strip())],
            duration=duration,
        )

    where = f"[in a {kernel} guest] {result.message}"
    if result.status is Status.SKIP:
        return [report("setup", "skipped", (str(item.path), item.location[1] or 0, f"Skipped: {where}"))]
    if result.status is Status.ERROR:
        return [report("setup", "failed", where, result.duration_s)]
    call = report(
        "call",
        "passed" if result.status is Status.PASS else "failed",
        None if result.status is Status.PASS else where,
        result.duration_s,
    )
    return [report("setup", "passed"), call, report("teardown", "passed")]


# -- fixtures ----------------------------------------------------------------


@pytest.fixture
def damon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    """A ready backend: kernel DAMON (sysfs) in a kdamon guest, kdamon's engine elsewhere."""
    from kdamon.backend.engine_backend import EngineBackend
    from kdamon.backend.host import Host, HostPaths
    from kdamon.backend.sysfs_backend import SysfsBackend

    state = tmp_path_factory.mktemp("kdamon-state")
    backend: Backend
    if _in_guest():
        backend = SysfsBackend(Host(HostPaths(state_dir=state)))
    else:
        backend = EngineBackend(Host(HostPaths.under(state)))
    yield backend
    for status in backend.status():
        if status.owner == "kdamon" and status.running:
            backend.stop(status.id)


@pytest.fixture
def damon_sysfs(tmp_path_factory: pytest.TempPathFactory) -> SysfsDriver:
    """The kernel's DAMON sysfs driver; only in a kdamon guest (skipped elsewhere)."""
    if not _in_guest():
        pytest.skip(f"needs a kdamon guest's kernel DAMON: mark the test @pytest.mark.{MARKER}(kernel=...)")
    from kdamon.kernel.ownership import OwnershipRegistry
    from kdamon.kernel.sysfs import SysfsDriver

    driver = SysfsDriver(owners=OwnershipRegistry(tmp_path_factory.mktemp("kdamon-owners")))
    if not driver.available():
        pytest.skip(
            f"this kernel ({os.uname().release}) has no DAMON sysfs interface (Linux 5.18+, CONFIG_DAMON_SYSFS)"
        )
    return driver


def _workload(kind: str) -> Iterator[Workload]:
    from kdamon.testing.workloads import start

    with start(kind) as workload:
        yield workload


@pytest.fixture
def hot_cold_workload() -> Iterator[Workload]:
    """A process writing a hot 8 MiB area all the time and never its cold 64 MiB area."""
    yield from _workload("hot_cold")


@pytest.fixture
def stairs_workload() -> Iterator[Workload]:
    """A process writing one of four 4 MiB areas per 1 s step, in order, cycling."""
    yield from _workload("stairs")


@pytest.fixture
def zigzag_workload() -> Iterator[Workload]:
    """A process writing one of four 4 MiB areas per 1 s step, back and forth."""
    yield from _workload("zigzag")
