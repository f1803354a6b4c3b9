"""Every ``state`` keyword of the kernel's release, on a running kdamond, with its effect (§3)."""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest

from kdamon.check.abi import KEYWORDS, expected_keywords
from kdamon.check.emit import NOTE
from kdamon.check.harness import RawTree, calibrate
from kdamon.kernel.sysfs import SysfsDriver
from kdamon.model import Context, Kdamond, Quota, Region, Scheme, Target
from kdamon.testing.waiting import holds_within
from kdamon.testing.workloads import Workload

Version = tuple[int, int]
QUOTA_BYTES = 1 << 30


@attrs.frozen
class Running:
    """The module's kdamond: one vaddr target (the workload's span) and one all-matching stat scheme."""

    raw: RawTree
    driver: SysfsDriver
    index: int
    pid: int
    kdamond: Kdamond
    span_bytes: int

    def rel(self, path: str) -> str:
        return f"kdamonds/{self.index}/{path}"

    def tried_dirs(self) -> list[str]:
        base = self.raw.path(self.rel("contexts/0/schemes/0/tried_regions"))
        return [n for n in self.raw.io.listdir(base) if n.isdigit()]


@pytest.fixture(scope="module")
def running(raw: RawTree, raw_driver: SysfsDriver, shared_hot_cold: Workload) -> Running:
    layout = shared_hot_cold.layout
    cal = calibrate(layout)
    driver = raw_driver
    scheme = Scheme(quota=Quota(bytes=QUOTA_BYTES, reset_interval_ms=100))
    kdamond = Kdamond(
        contexts=(
            Context(
                intervals=cal.intervals,
                schemes=(scheme,),
                targets=(Target(pid=layout.pid, regions=(Region(*layout.span),)),),
            ),
        )
    )
    index, pid = driver.launch(kdamond)
    time.sleep(3 * cal.intervals.aggr_us / 1e6)  # a few aggregations, so that stats have moved
    return Running(raw, driver, index, pid, kdamond, layout.span[1] - layout.span[0])


def test_on_started(running: Running) -> None:
    """'on' starts the kdamond: state reads on and pid is the kdamond's thread"""
    assert running.raw.read(running.rel("state")) == "on"
    assert running.raw.read(running.rel("pid")) == str(running.pid)
    comm = Path(f"/proc/{running.pid}/comm").read_text().strip()
    assert comm.startswith("kdamond."), f"pid {running.pid} is {comm!r}, not a kdamond thread"


def _until(r: Running, keyword: str, done: Callable[[], bool], attempts: int = 4) -> str:
    """Write ``keyword`` again until ``done()``; a note when it took more than one write.

    Up to 6.13 a tried-regions request is given up after two apply intervals
    of wall time, which a kdamond running slower than nominal (TCG) can miss.
    """
    for attempt in range(1, attempts + 1):
        if done():
            return "" if attempt == 1 else f"took {attempt} writes (the kdamond runs slower than nominal here)"
        time.sleep(0.1)
        r.raw.write(r.rel("state"), keyword)
    assert done(), f"no effect after {attempts} writes of {keyword!r}"
    return ""


def _effect(keyword: str, r: Running, version: Version) -> str:
    """Check what ``keyword`` did; returns a note.  Assertion failures say what went wrong."""
    if keyword == "update_schemes_stats":
        note = _until(r, keyword, lambda: r.driver.scheme_stats(r.index)[0].nr_tried > 0, attempts=20)
        stats = r.driver.scheme_stats(r.index)[0]
        assert stats.sz_tried > 0, f"stats did not move: {stats}"
        return "; ".join(filter(None, [f"nr_tried {stats.nr_tried}", note]))
    if keyword in ("commit", "commit_schemes_quota_goals"):
        assert r.raw.read(r.rel("state")) == "on", f"the kdamond stopped after {keyword!r}"
        assert r.raw.read(r.rel("pid")) == str(r.pid), f"{keyword!r} restarted the kdamond"
        return ""
    if keyword == "update_schemes_tried_regions":
        note = _until(r, keyword, lambda: bool(r.tried_dirs()))
        total, regions = r.driver.tried_regions(r.index, 0)
        size = sum(t.end - t.start for t in regions)
        assert size == r.span_bytes, f"tried regions cover {size} bytes, the monitored span is {r.span_bytes}"
        if version >= (6, 6):
            assert total == size, f"total_bytes {total} != the tried regions' {size} bytes"
        return "; ".join(filter(None, [f"{len(regions)} regions", note]))
    if keyword == "clear_schemes_tried_regions":
        assert not r.tried_dirs(), f"tried region directories remain: {r.tried_dirs()}"
        if version >= (6, 6):
            assert r.raw.read(r.rel("contexts/0/schemes/0/tried_regions/total_bytes")) == "0"
        return ""
    if keyword == "update_schemes_tried_bytes":
        note = _until(r, keyword, lambda: r.driver.tried_regions(r.index, 0)[0] > 0)
        total = r.driver.tried_regions(r.index, 0)[0]
        assert total == r.span_bytes, f"total_bytes {total}, the all-matching scheme should try {r.span_bytes}"
        return note
    if keyword == "update_schemes_effective_quotas":
        # 6.12 computes the effective quota only when the first charge window ends.
        note = _until(r, keyword, lambda: r.driver.effective_quota(r.index, 0) != 0, attempts=20)
        got = r.driver.effective_quota(r.index, 0)
        assert got == QUOTA_BYTES, f"effective_bytes {got}, want the size quota {QUOTA_BYTES}"
        return note
    if keyword == "update_tuned_intervals":
        sample, aggr = r.driver.tuned_intervals(r.index)
        want = r.kdamond.contexts[0].intervals
        assert (sample, aggr) == (want.sample_us, want.aggr_us), f"intervals changed to {sample}/{aggr} without a goal"
        return ""
    raise AssertionError(f"no effect check for {keyword}")


RUNNING_KEYWORDS = [e.path for e in KEYWORDS if e.path not in ("on", "off")]


@pytest.mark.parametrize("keyword", RUNNING_KEYWORDS)
def test_keyword(
    keyword: str, running: Running, version: Version, record_property: Callable[[str, object], None]
) -> None:
    """a state keyword works on a running kdamond if the release has it, and is EINVAL otherwise"""
    path = running.rel("state")
    if keyword not in expected_keywords(version):
        got = running.raw.errno_of(path, keyword)
        assert got == errno.EINVAL, (
            f"{keyword!r} is not in Linux {version[0]}.{version[1]} but writing it gave {errno.errorcode.get(got, got)}"
        )
        record_property(NOTE, "not in this release: EINVAL as expected")
        return
    running.raw.write(path, keyword)
    record_property(NOTE, _effect(keyword, running, version))


def test_unknown_keyword(running: Running) -> None:
    """an unknown state keyword is EINVAL and leaves the kdamond running"""
    got = running.raw.errno_of(running.rel("state"), "kdamon_no_such_keyword")
    assert got == errno.EINVAL, f"got {errno.errorcode.get(got, got)}"
    assert running.raw.read(running.rel("state")) == "on"


def test_off_stopped(running: Running) -> None:
    """'off' stops the kdamond and the write takes the whole keyword: state reads off, pid -1, the thread is gone"""
    fd = os.open(running.raw.path(running.rel("state")), os.O_WRONLY)
    try:
        written = os.write(fd, b"off\n")
    finally:
        os.close(fd)
    # A short count makes a shell's echo write the rest ("ff") and fail with EINVAL.
    assert written == 4, f"writing 'off\\n' to state reported {written} of 4 bytes written"
    assert running.raw.read(running.rel("state")) == "off"
    assert running.raw.read(running.rel("pid")) == "-1"
    assert holds_within(lambda: not _alive(running.pid)), f"kdamond thread {running.pid} still exists"


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().startswith("kdamond")
    except OSError:
        return False
