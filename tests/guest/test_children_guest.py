"""``kdamon record --include-children`` on real DAMON (6.12 and 7.3 guests, as root).

A workload parent forks two children with hot and cold memory of their own
once the recording runs; they must become targets 1 and 2 of the running
kdamond (appended by commit), listed in the record's metadata with their
parent, and their hot areas must be seen hot.  Then one child is killed (a
zombie: its pid can no longer be committed) and two more are forked: the
kdamond takes them as targets 3 and 4 without stopping.

Under TCG on a loaded host the aggregations come late and unevenly: the test
waits for snapshots to arrive (with generous limits), it never times them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hot_cold import assert_hot_stands_out, mean_accesses
from kdamon.model import Snapshot
from kdamon.records.detect import open_any
from kdamon.testing.raw_sysfs import reset_damon
from kdamon.testing.workloads import Layout, child_layout_path
from test_cli_guest import KDAMONDS

WAIT_S = 240.0  # a safety net against hangs on a loaded host, never a measured bound
SETTLED = 5  # snapshots of a target before its regions are taken to have adapted


def wait_for(what: str, ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not ready():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.2)


def layout_of(path: Path) -> Layout:
    wait_for(f"{path.name}", path.exists)
    return Layout.from_json(path.read_text())


def per_target(record: Path) -> dict[int, list[Snapshot]]:
    """The snapshots of each target so far (the recorder is still writing the file)."""
    if not record.exists() or record.stat().st_size == 0:
        return {}
    out: dict[int, list[Snapshot]] = {}
    for snapshot in open_any(record).snapshots():
        out.setdefault(snapshot.target_idx, []).append(snapshot)
    return out


@pytest.fixture
def workload(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    layout = tmp_path / "layout.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kdamon.testing.workloads",
            "hot_cold",
            "--sizes",
            "8MiB",
            "64MiB",
            "--seconds",
            "900",
            "--children",
            "2",
            "--fork-on-sigusr1",
            "--layout",
            str(layout),
        ]
    )
    yield proc, layout
    for child in range(4):
        path = child_layout_path(layout, child)
        if path.exists():
            try:
                os.kill(Layout.from_json(path.read_text()).pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    proc.kill()
    proc.wait()


def since_mapped(snapshots: list[Snapshot], layout: Layout) -> list[Snapshot]:
    """The snapshots from the first whose regions reach the hot area: a child maps its areas after
    the fork, so a target that joined before gets them at the next operations update."""
    hot_start, hot_end = layout.hot
    for i, snap in enumerate(snapshots):
        if any(r.start < hot_end and r.end > hot_start for r in snap.states()):
            return snapshots[i:]
    return []


def assert_hot(snapshots: list[Snapshot], layout: Layout, who: str) -> None:
    settled = snapshots[SETTLED:]
    assert settled, f"{who}: only {len(snapshots)} snapshots"
    top = settled[0].aggr_us // settled[0].sample_us
    assert_hot_stands_out(mean_accesses(settled, layout.hot), mean_accesses(settled, layout.cold), top, who)


def test_record_follows_the_children_a_process_forks(
    tmp_path: Path, workload: tuple[subprocess.Popen[bytes], Path]
) -> None:
    reset_damon()
    parent, layout_file = workload
    layout = layout_of(layout_file)
    out = tmp_path / "children.kdr"
    recorder = subprocess.Popen(
        [sys.executable, "-m", "kdamon", "record", "-o", str(out), "--pid", str(parent.pid), "--include-children"],
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, KDAMON_STATE_DIR=str(tmp_path / "run")),
    )
    try:
        wait_for("the parent's snapshots", lambda: len(per_target(out).get(0, [])) >= 3)
        parent.send_signal(signal.SIGUSR1)  # two children, forked while the kdamond runs
        children = [layout_of(child_layout_path(layout_file, i)) for i in range(2)]
        wait_for(
            "settled snapshots of both children",
            lambda: all(
                len(since_mapped(per_target(out).get(i, []), child)) > 2 * SETTLED
                for i, child in enumerate(children, 1)
            ),
        )

        first = per_target(out)
        os.kill(children[0].pid, signal.SIGKILL)  # a zombie until its parent reaps it: target 1 stays
        time.sleep(1)
        parent.send_signal(signal.SIGUSR1)  # two more: the commit names a stand-in for the zombie
        later = [layout_of(child_layout_path(layout_file, i)) for i in (2, 3)]
        wait_for(
            "settled snapshots of the later children",
            lambda: all(
                len(since_mapped(per_target(out).get(i, []), child)) > 2 * SETTLED for i, child in enumerate(later, 3)
            ),
        )
        assert (KDAMONDS / "0" / "state").read_text().strip() == "on"
    finally:
        recorder.send_signal(signal.SIGTERM)
        _, stderr = recorder.communicate(timeout=120)
    assert recorder.returncode == 0, stderr
    assert "through the process connector's fork events" in stderr, stderr
    assert "started again" not in stderr, stderr

    reader = open_any(out)
    pids = [layout.pid] + [c.pid for c in children + later]
    assert [t["pid"] for t in reader.meta.targets] == pids
    assert [t["parent"] for t in reader.meta.targets[1:]] == [layout.pid] * 4
    snapshots = per_target(out)
    assert sorted(snapshots) == [0, 1, 2, 3, 4]
    assert_hot(snapshots[0], layout, "parent")
    for index, child in ((1, children[0]), (2, children[1])):
        assert_hot(since_mapped(first[index], child), child, f"child target {index}")
    for index, child in ((3, later[0]), (4, later[1])):
        assert_hot(since_mapped(snapshots[index], child), child, f"child target {index}")
    dead = snapshots[1][-SETTLED:]  # the killed child, monitored through a stand-in without memory
    assert all(int(s.regions["nr_accesses"].max()) == 0 for s in dead), "a killed child's target is seen accessed"
    assert (KDAMONDS / "0" / "state").read_text().strip() == "off"  # the temporary kdamond is gone
