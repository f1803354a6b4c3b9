"""``kdamon show`` and ``top`` on real DAMON (6.12 and 7.3 guests, as root).

A kdamond of kdamon's, one started by another tool (raw sysfs writes) and
DAMON_STAT's (7.3) are watched; for the foreign ones DAMON's sysfs tree and
the modules' parameters must be byte-identical before and after, and the
workload's hot area must show hot.  ``top`` runs on a pseudo-terminal (the
guest has no tmux; the host tests drive it in tmux).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import pty
import select
import struct
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hot_cold import assert_hot_stands_out
from kdamon.records.detect import open_any
from kdamon.testing.raw_sysfs import raw_write
from kdamon.testing.waiting import wait_until
from kdamon.testing.workloads import Layout
from kdamon_cli import Kdamon
from quirks import skip_if_reclaim_ignores_enabled
from test_cli_guest import KDAMONDS, MODULES, damon_tree, start_foreign

TRACING = Path("/sys/kernel/tracing")
STAT = MODULES / "damon_stat" / "parameters"
# What DAMON_STAT itself rewrites while it runs: its outputs, not a configuration anyone writes.
WAIT_S = 180.0  # a safety net against a hang under TCG, never reached when things work
STAT_OUTPUTS = ("estimated_memory_bandwidth", "memory_idle_ms_percentiles", "aggr_interval_us")


def configuration() -> dict[str, str]:
    """DAMON's sysfs tree and the modules' parameters, without what the modules update by themselves
    while they run (read-only statistics, DAMON_STAT's outputs)."""
    return {
        path: text
        for path, text in damon_tree().items()
        if not path.startswith(str(MODULES)) or (os.stat(path).st_mode & 0o200 and Path(path).name not in STAT_OUTPUTS)
    }


def kdamon_instances() -> list[str]:
    return sorted(n for n in os.listdir(TRACING / "instances") if n.startswith("kdamon-"))


def mean_rate(view: dict[str, object], low: int, high: int) -> float:
    """The size-weighted mean ``nr_accesses`` of a ``show --json`` view over ``[low, high)``."""
    total = weight = 0
    for region in view["regions"]:  # type: ignore[attr-defined]
        overlap = min(region["end"], high) - max(region["start"], low)
        if overlap > 0:
            total += region["nr_accesses"] * overlap
            weight += overlap
    assert weight, f"no region covers {low:#x}-{high:#x}"
    return total / weight


def assert_hot_area_hot(view: dict[str, object], layout: Layout) -> None:
    top = int(view["aggr_us"]) // int(view["sample_us"])  # type: ignore[call-overload]
    assert_hot_stands_out(
        mean_rate(view, layout.hot[0], layout.hot[1]),
        mean_rate(view, layout.cold[0], layout.cold[1]),
        top,
        "show --json",
    )


def hot_area_is_hot(layout: Layout) -> Callable[[dict[str, object]], bool]:
    """Whether a ``show --json`` view passes :func:`assert_hot_area_hot` (the regions have adapted)."""

    def check(view: dict[str, object]) -> bool:
        try:
            assert_hot_area_hot(view, layout)
        except AssertionError:
            return False
        return True

    return check


def show_json(kdamon: Kdamon, *argv: str) -> dict[str, object]:
    done = kdamon("show", "--json", *argv)
    [line] = done.stdout.splitlines()
    view: dict[str, object] = json.loads(line)
    return view


def test_show_own_kdamond(kdamon: Kdamon, workload: Layout) -> None:
    assert kdamon("start", "--target-pid", str(workload.pid), "--update", "1s").stdout.strip() == "sysfs:0"
    view = wait_until(
        lambda: show_json(kdamon, "sysfs:0"),
        hot_area_is_hot(workload),
        "the regions to adapt to the hot area",
        timeout_s=WAIT_S,
    )
    assert view["kdamond"] == "sysfs:0" and view["sample_us"] == 5000 and view["aggr_us"] == 100000
    assert_hot_area_hot(view, workload)
    span = f"{workload.hot[0]:#x}-{workload.cold[1]:#x}"
    text = kdamon("show", "sysfs:0", "--address-range", span, "--sort", "hot").stdout
    assert "hot" in text and "temperature (size by access rate" in text
    assert kdamon_instances() == []


def test_show_and_top_of_a_foreign_kdamond_write_nothing(kdamon: Kdamon, workload: Layout) -> None:
    start_foreign(workload.pid)
    before = damon_tree()
    view = wait_until(
        lambda: show_json(kdamon, "sysfs:0"),
        hot_area_is_hot(workload),
        "the regions to adapt to the hot area",
        timeout_s=WAIT_S,
    )
    assert view["kdamond"] == "sysfs:0"
    assert_hot_area_hot(view, workload)
    screen = run_top(kdamon, "sysfs:0", "--address-range", f"{workload.hot[0]:#x}-{workload.cold[1]:#x}")
    assert "kdamon top" in screen and "regions by hot" in screen and "heatmap" in screen
    assert damon_tree() == before, "show/top changed DAMON's sysfs tree or module parameters"
    assert kdamon_instances() == []


def test_show_with_a_pid_starts_and_removes_a_temporary_kdamond(kdamon: Kdamon, workload: Layout) -> None:
    done = kdamon("show", "--json", "--pid", str(workload.pid), "--warmup", "20")
    assert "temporary kdamond" in done.stderr and "kernel DAMON through sysfs" in done.stderr
    assert_hot_area_hot(json.loads(done.stdout), workload)
    assert (KDAMONDS / "0" / "state").read_text().strip() == "off"
    assert int((KDAMONDS / "0" / "contexts" / "nr_contexts").read_text()) == 0, "the temporary kdamond stays"


def test_show_paddr(kdamon: Kdamon) -> None:
    view = show_json(kdamon, "--paddr", "--warmup", "5")
    summary = view["summary"]
    assert summary["total_bytes"] > 64 << 20  # type: ignore[index]
    assert sum(b["bytes"] for b in summary["temperature"]) == summary["total_bytes"]  # type: ignore[index]
    assert (KDAMONDS / "0" / "state").read_text().strip() == "off"


def test_show_and_top_of_damon_stat_write_nothing(kdamon: Kdamon) -> None:
    if not (STAT / "enabled").exists():
        pytest.skip("this kernel has no DAMON_STAT (Linux 6.17+)")
    raw_write(STAT / "enabled", "Y")  # another user of DAMON turns DAMON_STAT on
    try:
        before = configuration()
        [listed] = [e for e in json.loads(kdamon("status", "--json").stdout) if e["id"] == "module:damon_stat"]
        assert listed["owner"] == "foreign"
        view = wait_until(
            lambda: show_json(kdamon, "module:damon_stat"),
            lambda v: v["summary"]["hot_bytes"] + v["summary"]["warm_bytes"] > 0,  # type: ignore[index]
            "DAMON_STAT to see accesses",
            timeout_s=WAIT_S,
        )
        summary = view["summary"]
        assert summary["total_bytes"] > 256 << 20  # type: ignore[index]
        assert summary["hot_bytes"] + summary["warm_bytes"] > 0, "DAMON_STAT saw no access at all"  # type: ignore[index]
        assert int(view["aggr_us"]) == 20 * int(view["sample_us"])  # type: ignore[call-overload]
        screen = run_top(kdamon, "module:damon_stat")
        assert "module:damon_stat (paddr, foreign)" in screen and "heatmap" in screen
        assert configuration() == before, "show/top changed DAMON_STAT's parameters or DAMON's sysfs tree"
        assert kdamon_instances() == []
    finally:
        raw_write(STAT / "enabled", "N")


def run_top(kdamon: Kdamon, *argv: str, frames: int = 2, timeout_s: float = 120) -> str:
    """``kdamon top`` on a pseudo-terminal until ``frames`` aggregations are drawn, then ``q``; the screen text."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: kdamon top on the terminal
        os.execve(sys.executable, [sys.executable, "-m", "kdamon", "top", *argv], kdamon.env | {"TERM": "xterm"})
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # a 120x40 terminal
    screen = b""
    deadline = time.monotonic() + timeout_s
    try:
        while screen.count(b"intervals: sample") < frames and time.monotonic() < deadline:
            if select.select([fd], [], [], 1)[0]:
                try:
                    screen += os.read(fd, 65536)
                except OSError:
                    break
        os.write(fd, b"q")
        while select.select([fd], [], [], 10)[0]:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    text = screen.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, text[-2000:]
    assert text.count("intervals: sample") >= frames, text[-2000:]
    return text


def test_record_paddr(kdamon: Kdamon, tmp_path: Path) -> None:
    out = tmp_path / "paddr.kdr"
    done = kdamon("record", "-o", str(out), "--paddr", "--duration", "3")
    assert "recording physical memory with kernel DAMON through sysfs" in done.stderr
    reader = open_any(out)
    [target] = reader.meta.targets
    assert reader.meta.ops == "paddr" and target["paddr"][0][1] > target["paddr"][0][0]
    snapshots = list(reader.snapshots())
    assert len(snapshots) >= 3 and all(s.total_size == snapshots[0].total_size for s in snapshots)
    assert (KDAMONDS / "0" / "state").read_text().strip() == "off"


def test_record_a_pageout_scheme_and_report_its_applications(kdamon: Kdamon, workload: Layout, tmp_path: Path) -> None:
    out = tmp_path / "pageout.kdr"
    done = kdamon(
        "record",
        "-o",
        str(out),
        "--pid",
        str(workload.pid),
        "--duration",
        "8",
        "--scheme",
        "action=pageout,nr_accesses=0-0,age=1s-max",
    )
    if not (TRACING / "events" / "damon" / "damos_before_apply").exists():
        assert "no damon:damos_before_apply trace event (Linux 6.7+)" in done.stderr, done.stderr
        pytest.skip("this kernel has no damos_before_apply trace event (Linux 6.7+): nothing to report")
    report = json.loads(kdamon("report", "trace", "--json", str(out)).stdout)
    applied = [a for a in report["applications"] if a["scheme_idx"] == 0]
    # The cold 64 MiB is idle long enough after ten aggregations: some of it is applied to (TCG on a loaded
    # host may run only a few aggregations past that age in the time given).
    assert applied and sum(a["bytes"] for a in applied) >= 4 << 20, report
    text = kdamon("report", "trace", str(out)).stdout
    assert "total" in text


def test_record_a_foreign_kdamond_read_only(kdamon: Kdamon, workload: Layout, tmp_path: Path) -> None:
    start_foreign(workload.pid)
    time.sleep(2)
    before = damon_tree()
    out = tmp_path / "attached.kdr"
    done = kdamon("record", "-o", str(out), "--kdamond", "sysfs:0", "--duration", "3")
    assert "read-only" in done.stderr
    reader = open_any(out)
    assert reader.meta.targets == ({"kdamond": "sysfs:0", "target": f"pid {workload.pid}"},)
    assert sum(1 for _ in reader.snapshots()) >= 3  # about 30 at full speed; TCG on a loaded host gives fewer
    assert damon_tree() == before
    assert kdamon_instances() == []


def test_status_refresh_asks_kdamons_own_kdamond_for_fresh_results(kdamon: Kdamon, workload: Layout) -> None:
    kdamon(
        "start",
        "--target-pid",
        str(workload.pid),
        "--scheme",
        "action=stat",
        "--scheme",
        "action=pageout,nr_accesses=0-0,age=1s-max,quota_size=4M,quota_reset=1s",
    )
    time.sleep(3)
    [before] = json.loads(kdamon("status", "--json").stdout)
    assert before["stats"][0]["nr_tried"] == 0, "stats are copied only on request"
    [entry] = json.loads(kdamon("status", "--json", "--refresh").stdout)
    assert entry["stats"][0]["nr_tried"] > 0 and entry["stats"][1]["sz_tried"] > 0
    refreshed = entry["refreshed"]
    notes = refreshed["notes"]
    if refreshed["tried"][0] is None:  # tried regions came in 6.2: the note says so
        assert any("update_schemes_tried_regions" in n for n in notes), notes
    else:
        count, size = refreshed["tried"][0]
        assert count > 0 and size >= 64 << 20  # the stat scheme tries every region
    if refreshed["effective_quota_bytes"][1] is None:  # effective quotas came in 6.9
        assert any("update_schemes_effective_quotas" in n for n in notes), notes
    else:
        assert refreshed["effective_quota_bytes"][1] == 4 << 20  # the size quota, no goal
    if (KDAMONDS / "0" / "contexts" / "0" / "monitoring_attrs" / "intervals" / "intervals_goal").exists():
        assert refreshed["tuned_intervals"] == [5000, 100000]  # no goal: as configured
    else:
        assert refreshed["tuned_intervals"] is None  # no intervals goal before 6.15: nothing to note
    assert not any("update_tuned_intervals" in n for n in refreshed["notes"])


def test_quota_goal_and_goals_only_tune(kdamon: Kdamon, workload: Layout) -> None:
    done = kdamon(
        "start",
        "--target-pid",
        str(workload.pid),
        "--scheme",
        "action=pageout,nr_accesses=0-0,age=1s-max,quota_size=64M,quota_reset=1s,quota_goal=user_input:1000:100",
        check=False,
    )
    if done.returncode != 0:
        assert "quotas/goals/nr_goals" in done.stderr and "Linux 6.8" in done.stderr, done.stderr  # refused, said why
        pytest.skip("this kernel has no DAMOS quota goals (Linux 6.8+)")
    goal = KDAMONDS / "0" / "contexts" / "0" / "schemes" / "0" / "quotas" / "goals" / "0"
    assert (goal / "current_value").read_text().strip() == "100"
    pid = (KDAMONDS / "0" / "pid").read_text()
    done = kdamon("tune", "sysfs:0", "--goals-only", "--scheme", "quota_goal=user_input:1000:900")
    assert "committed the quota goals" in done.stderr
    assert (goal / "current_value").read_text().strip() == "900"
    assert (KDAMONDS / "0" / "state").read_text().strip() == "on" and (KDAMONDS / "0" / "pid").read_text() == pid


def test_intervals_goal(kdamon: Kdamon, workload: Layout) -> None:
    goal = KDAMONDS / "0" / "contexts" / "0" / "monitoring_attrs" / "intervals" / "intervals_goal"
    done = kdamon("start", "--target-pid", str(workload.pid), "--intervals-goal", "4%:3:5ms:200ms", check=False)
    if done.returncode != 0:
        assert "intervals_goal/access_bp (Linux 6.15+)" in done.stderr, done.stderr  # refused, and said why
        pytest.skip("this kernel has no intervals auto-tuning (Linux 6.15+)")
    assert [(goal / f).read_text().strip() for f in ("access_bp", "aggrs", "min_sample_us", "max_sample_us")] == [
        "400",
        "3",
        "5000",
        "200000",
    ]
    time.sleep(3)
    [entry] = json.loads(kdamon("status", "--json", "--refresh").stdout)
    sample_us, aggr_us = entry["refreshed"]["tuned_intervals"]
    assert 5000 <= sample_us <= 200000 and aggr_us == 20 * sample_us


def test_show_damon_reclaim_writes_nothing(kdamon: Kdamon) -> None:
    reclaim = MODULES / "damon_reclaim" / "parameters"
    if not (reclaim / "enabled").exists():
        pytest.skip("this kernel has no DAMON_RECLAIM")
    skip_if_reclaim_ignores_enabled()
    # Another user of DAMON turns DAMON_RECLAIM on, with watermarks that keep it active: by default it
    # monitors nothing while more than half of the memory is free (DAMON pauses a kdamond whose
    # schemes are all deactivated by their watermarks).
    for name, value in (("wmarks_high", "1000"), ("wmarks_mid", "999"), ("wmarks_low", "0")):
        raw_write(reclaim / name, value)
    raw_write(reclaim / "enabled", "Y")
    try:
        time.sleep(1)
        before = configuration()
        view = show_json(kdamon, "module:damon_reclaim")
        assert view["kdamond"] == "module:damon_reclaim"
        assert (view["sample_us"], view["aggr_us"]) == (
            int((reclaim / "sample_interval").read_text()),
            int((reclaim / "aggr_interval").read_text()),
        )
        assert view["summary"]["total_bytes"] > 256 << 20  # type: ignore[index]
        assert configuration() == before, "show changed DAMON_RECLAIM's parameters or DAMON's sysfs tree"
        assert kdamon_instances() == []
    finally:
        raw_write(reclaim / "enabled", "N")


def debugfs_files(debugfs: Path) -> dict[str, str]:
    """What each DAMON debugfs file holds; mk_contexts and rm_contexts cannot be read (EINVAL), and
    init_regions not while monitoring runs (EBUSY): the error is what they hold."""
    out = {}
    for p in debugfs.iterdir():
        if p.is_file():
            try:
                out[p.name] = p.read_text()
            except OSError as exc:
                if exc.errno not in (errno.EBUSY, errno.EINVAL):
                    raise
                out[p.name] = errno.errorcode[exc.errno]
    return out


def test_show_a_foreign_debugfs_context(kdamon: Kdamon, workload: Layout) -> None:
    from debugfs_guest import DEBUGFS, HAS_DEBUGFS, reset_damon

    if not HAS_DEBUGFS:
        pytest.skip("no DAMON debugfs interface in this kernel: run on linux-6.1-dbgfs")
    reset_damon()
    try:
        raw_write(DEBUGFS / "target_ids", str(workload.pid))  # another tool drives debugfs
        raw_write(DEBUGFS / "monitor_on", "on")
        before = debugfs_files(DEBUGFS)
        view = wait_until(
            lambda: show_json(kdamon, "debugfs:0"),
            hot_area_is_hot(workload),
            "the regions to adapt to the hot area",
            timeout_s=WAIT_S,
        )
        assert view["kdamond"] == "debugfs:0"
        assert_hot_area_hot(view, workload)
        after = debugfs_files(DEBUGFS)
        assert after == before, "show changed the debugfs files"
        assert kdamon_instances() == []
    finally:
        reset_damon()
