"""The errno semantics of DAMON sysfs (§6.3): each bad request fails with its documented errno."""

from __future__ import annotations

import errno
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest

from kdamon.check.harness import RawTree

Version = tuple[int, int]
K = "kdamonds/0"
C = f"{K}/contexts/0"
S = f"{C}/schemes/0"


def stage(raw: RawTree, pid: int, *, ops: str = "vaddr", nr_targets: int = 1) -> None:
    """A minimal valid kdamond 0: one context, ``nr_targets`` targets on ``pid``."""
    raw.write("kdamonds/nr_kdamonds", 1)
    raw.write(f"{K}/contexts/nr_contexts", 1)
    raw.write(f"{C}/operations", ops)
    raw.write(f"{C}/targets/nr_targets", nr_targets)
    for t in range(nr_targets):
        raw.write(f"{C}/targets/{t}/pid_target", pid)


def with_scheme(raw: RawTree, pid: int) -> None:
    stage(raw, pid)
    raw.write(f"{C}/schemes/nr_schemes", 1)


def missing_pid() -> int:
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    return next(p for p in range(pid_max - 1, 1, -1) if not os.path.exists(f"/proc/{p}"))


@attrs.frozen
class Case:
    """Stage with ``setup(raw, pid)``, then write ``value`` to ``path``: expect ``want(version)``."""

    setup: Callable[[RawTree, int], None]
    path: str
    value: str
    want: Callable[[Version], int]
    since: Version = (5, 18)
    then: str = ""  # the state keyword written after ``value`` ("" = none); its errno is checked instead


def einval(_v: Version) -> int:
    return errno.EINVAL


def ok(_v: Version) -> int:
    return 0


def _regions(*bounds: tuple[int, int]) -> Callable[[RawTree, int], None]:
    def setup(raw: RawTree, pid: int) -> None:
        stage(raw, pid)
        raw.write(f"{C}/targets/0/regions/nr_regions", len(bounds))
        for i, (start, end) in enumerate(bounds):
            raw.write(f"{C}/targets/0/regions/{i}/start", start)
            raw.write(f"{C}/targets/0/regions/{i}/end", end)

    return setup


def _then(path: str, value: str) -> Callable[[RawTree, int], None]:
    def setup(raw: RawTree, pid: int) -> None:
        stage(raw, pid)
        raw.write(path, value)

    return setup


def _scheme_then(path: str, value: str) -> Callable[[RawTree, int], None]:
    def setup(raw: RawTree, pid: int) -> None:
        with_scheme(raw, pid)
        raw.write(f"{S}/{path}", value)

    return setup


def _filter(layer: str, count_only: bool = False) -> Callable[[RawTree, int], None]:
    def setup(raw: RawTree, pid: int) -> None:
        with_scheme(raw, pid)
        raw.write(f"{S}/{layer}/nr_filters", 1)
        if not count_only:
            raw.write(f"{S}/{layer}/0/type", "addr")
            raw.write(f"{S}/{layer}/0/addr_start", 8 << 20)
            raw.write(f"{S}/{layer}/0/addr_end", 4 << 20)

    return setup


def _no_context(raw: RawTree, pid: int) -> None:
    stage(raw, pid)
    raw.write(f"{K}/contexts/nr_contexts", 0)


def _paddr_two(raw: RawTree, pid: int) -> None:
    stage(raw, pid, ops="paddr", nr_targets=2)


def _missing_pid(raw: RawTree, _pid: int) -> None:
    stage(raw, missing_pid())


def _started(raw: RawTree, pid: int) -> None:
    stage(raw, pid)
    raw.write(f"{K}/state", "on")


STATE = f"{K}/state"
CASES: dict[str, Case] = {
    "nr_contexts_2": Case(stage, f"{K}/contexts/nr_contexts", "2", einval),
    "nr_negative": Case(stage, f"{C}/targets/nr_targets", "-1", einval),
    "nr_not_a_number": Case(stage, f"{C}/schemes/nr_schemes", "one", einval),
    "operations_unknown": Case(stage, f"{C}/operations", "kdamon", einval),
    "action_unknown": Case(with_scheme, f"{S}/action", "kdamon", einval),
    "watermark_metric_unknown": Case(with_scheme, f"{S}/watermarks/metric", "kdamon", einval),
    "filter_type_unknown": Case(_filter("filters", count_only=True), f"{S}/filters/0/type", "kdamon", einval, (6, 3)),
    "filter_type_wrong_layer": Case(
        _filter("core_filters", count_only=True), f"{S}/core_filters/0/type", "anon", einval, (6, 15)
    ),
    "addr_unit_zero": Case(stage, f"{C}/addr_unit", "0", einval, (6, 18)),
    "state_unknown": Case(stage, STATE, "kdamon", einval),
    "on_min_nr_regions_below_3": Case(_then(f"{C}/monitoring_attrs/nr_regions/min", "2"), STATE, "on", einval),
    "on_min_above_max": Case(_then(f"{C}/monitoring_attrs/nr_regions/min", "2000"), STATE, "on", einval),
    "on_sample_above_aggr": Case(
        _then(f"{C}/monitoring_attrs/intervals/sample_us", "200000"), STATE, "on", einval, (6, 4)
    ),
    "on_missing_pid": Case(_missing_pid, STATE, "on", einval),
    # 6.1 only rejected start > end and takes an empty region (observed); 6.12 rejects it.
    "on_region_empty": Case(_regions((0, 0)), STATE, "on", einval, (6, 12)),
    "on_region_inverted": Case(_regions((8 << 20, 4 << 20)), STATE, "on", einval),
    "on_regions_overlapping": Case(_regions((4 << 20, 12 << 20), (8 << 20, 16 << 20)), STATE, "on", einval),
    "on_paddr_two_targets": Case(_paddr_two, STATE, "on", einval),
    "on_no_context": Case(_no_context, STATE, "on", einval),
    # The filter's EINVAL is lost on the way up: building the scheme returns NULL, which
    # the caller reports as ENOMEM (seen on 6.12 and 7.3; damon-abi.md §6.3 says EINVAL).
    "on_filter_addr_inverted": Case(_filter("filters"), STATE, "on", lambda _v: errno.ENOMEM, (6, 6)),
    "off_never_started": Case(stage, STATE, "off", einval),
    "keyword_never_started": Case(stage, STATE, "update_schemes_stats", einval),
    "on_while_running": Case(_started, STATE, "on", lambda _v: errno.EBUSY),
    "nr_kdamonds_while_running": Case(_started, "kdamonds/nr_kdamonds", "2", lambda _v: errno.EBUSY),
    "nr_schemes_while_running": Case(_started, f"{C}/schemes/nr_schemes", "1", ok),
}


def _name(err: int) -> str:
    return "success" if err == 0 else errno.errorcode.get(err, str(err))


@pytest.mark.parametrize("case", list(CASES))
def test_errno(
    case: str, fresh: RawTree, sleeper: subprocess.Popen[bytes], version: Version, need: Callable[[Version, str], None]
) -> None:
    """a bad request fails with its documented errno"""
    c = CASES[case]
    need(c.since, case.replace("_", " "))
    c.setup(fresh, sleeper.pid)
    got = fresh.errno_of(c.path, c.value)
    want = c.want(version)
    assert got == want, f"writing {c.value!r} to {c.path}: {_name(got)}, want {_name(want)}"


def test_off_after_targets_exited(fresh: RawTree, version: Version) -> None:
    """once every target exited (and was reaped), the kdamond stops; 'off' is then EPERM (7.3: success)"""
    proc = subprocess.Popen(["sleep", "600"])
    try:
        stage(fresh, proc.pid)
        fresh.write(STATE, "on")
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 5
    while fresh.read(STATE) != "off":
        assert time.monotonic() < deadline, "the kdamond kept running after its only target exited"
        time.sleep(0.1)
    assert fresh.read(f"{K}/pid") == "-1"
    got = fresh.errno_of(STATE, "off")
    want = 0 if version >= (7, 3) else errno.EPERM
    assert got == want, f"'off' after the targets exited: {_name(got)}, want {_name(want)}"
