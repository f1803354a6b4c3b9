"""The live view's sources: which kdamonds can be watched, frames per aggregation, nothing written to DAMON."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fake_tracefs import FakeTracefs
from kdamon.backend.host import Host, HostPaths
from kdamon.backend.live import EngineWatch, Framer, TraceWatch, Watched, publish_latest, watchable
from kdamon.backend.types import KdamondId, TargetAdded
from kdamon.model.snapshot import Snapshot
from kdamon.trace.events import AGGREGATED, INTERVALS_TUNE
from kdamon.trace.synth import pages

PID = 4321
AGGR_NS = 100_000_000


def watched(
    *, targets: int = 1, tuned: bool = False, backend: str = "module", key: str = "damon_stat", pid: int = PID
) -> Watched:
    return Watched(
        KdamondId(backend, key),
        "foreign",
        pid,
        "paddr",
        5000,
        100000,
        tuned,  # type: ignore[arg-type]
        tuple(f"pid {i}" for i in range(targets)),
    )


def snap(time_ns: int, target: int, accesses: int = 1) -> Snapshot:
    return Snapshot.of_rows(time_ns, 0, 0, target, [(0, 4096, accesses, 0)], 5000, 100000)


def test_frames_hold_every_target_of_one_aggregation() -> None:
    framer = Framer(watched(targets=2))
    assert framer.add(snap(10, 0)) is None
    frame = framer.add(snap(11, 1))
    assert frame is not None and [s.target_idx for s in frame.snapshots] == [0, 1] and frame.time_ns == 10
    # target 1 lost its events in the next aggregation: the frame closes when target 0 comes again
    assert framer.add(snap(20, 0)) is None
    late = framer.add(snap(30, 0))
    assert late is not None and [s.time_ns for s in late.snapshots] == [20]


def test_a_frame_tells_the_targets_added_and_the_frames_after_it_wait_for_them() -> None:
    framer = Framer(watched(targets=1))
    first = framer.feed(snap(10, 0))
    assert first is not None and first.added == ()
    assert framer.feed(TargetAdded(1, 4242)) is None
    assert framer.feed(snap(20, 0)) is None, "target 1 is expected now"
    frame = framer.feed(snap(21, 1))
    assert frame is not None and [s.target_idx for s in frame.snapshots] == [0, 1]
    assert frame.added == (TargetAdded(1, 4242),)
    assert framer.feed(snap(30, 0)) is None
    later = framer.feed(snap(31, 1))
    assert later is not None and later.added == ()


def test_tuned_intervals_are_measured_until_a_tune_event_says_them() -> None:
    framer = Framer(watched(tuned=True))
    assert framer.add(snap(1_000_000_000, 0)) is None, "the first aggregation's interval is unknown"
    frame = framer.add(snap(3_000_000_000, 0))
    assert frame is not None
    assert (frame.snapshots[0].sample_us, frame.snapshots[0].aggr_us) == (100_000, 2_000_000)


def damon_stat_module(base: Path, *, enabled: str = "Y", aggr_us: int = 2_000_000) -> None:
    params = base / "module" / "damon_stat" / "parameters"
    params.mkdir(parents=True)
    for name, value in {
        "enabled": enabled,
        "kdamond_pid": str(PID if enabled == "Y" else -1),
        "aggr_interval_us": str(aggr_us),
        "estimated_memory_bandwidth": "0",
        "memory_idle_ms_percentiles": "0",
    }.items():
        (params / name).write_text(value + "\n")


def tree(base: Path) -> dict[str, bytes]:
    return {str(p.relative_to(base)): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()}


def test_damon_stat_is_watchable_with_its_current_intervals(tmp_path: Path) -> None:
    damon_stat_module(tmp_path)
    host = Host(HostPaths.under(tmp_path))
    [stat] = watchable(host)
    assert (str(stat.id), stat.owner, stat.pid, stat.ops) == ("module:damon_stat", "foreign", PID, "paddr")
    assert (stat.sample_us, stat.aggr_us, stat.tuned) == (100_000, 2_000_000, True)


def test_a_disabled_module_is_not_watchable(tmp_path: Path) -> None:
    damon_stat_module(tmp_path, enabled="N")
    assert watchable(Host(HostPaths.under(tmp_path))) == []


@pytest.mark.parametrize("raw", [True, False])
def test_a_trace_watch_reads_its_own_instance_only(tmp_path: Path, raw: bool) -> None:
    damon_stat_module(tmp_path)
    fs = FakeTracefs(tmp_path / "tracing")
    events = [
        (t0 + r, AGGREGATED, (0, 3, r * 4096, (r + 1) * 4096, r, 1))
        for t0 in (1_000_000_000, 1_100_000_000)
        for r in range(3)
    ]
    events.insert(3, (1_050_000_000, INTERVALS_TUNE, (2500,)))
    fs.raw_data = {0: b"".join(pages(events, PID))}
    from kdamon.trace.synth import text_line

    fs.text_data = "".join(text_line(PID, t, n, v) for t, n, v in events)
    before = tree(tmp_path / "module")
    host = Host(HostPaths.under(tmp_path), fs=fs)
    watch = TraceWatch(host, watched(tuned=True))
    watch.session.raw = raw
    if not raw:  # reopen the session's pipes for text
        watch.session.close()
        watch.session.open()
    with watch:
        rounds = iter([False, True])
        frames = list(watch.frames(lambda: next(rounds)))
    # the first aggregation has no measured interval, the second comes after a tune event: 2.5 ms x 20
    assert [f.time_ns for f in frames] == [1_100_000_000]
    assert (frames[0].snapshots[0].sample_us, frames[0].snapshots[0].aggr_us) == (2500, 50_000)
    assert frames[0].snapshots[0].regions["nr_accesses"].tolist() == [0, 1, 2]
    assert tree(tmp_path / "module") == before
    assert all(path.startswith("instances/kdamon-") for path, _ in fs.writes), fs.writes
    assert list((tmp_path / "tracing" / "instances").iterdir()) == []


def test_an_engine_watch_yields_each_published_aggregation_once(tmp_path: Path) -> None:
    directory = tmp_path / "run" / "engine" / "0"
    directory.mkdir(parents=True)
    publish_latest(directory, (snap(5, 0),), "vaddr/uffd")  # published before the watch: not new
    host = Host(HostPaths.under(tmp_path))
    watch = EngineWatch(host, watched(backend="engine", key="0", pid=os.getpid()), poll_s=0)  # the daemon: alive
    polls = iter(range(100))

    def until() -> bool:
        step = next(polls)
        if step == 3:
            publish_latest(directory, (snap(10, 0, accesses=7), snap(10, 1)), "vaddr/uffd")
        return step >= 6

    frames = list(watch.frames(until))
    assert [(f.time_ns, len(f.snapshots)) for f in frames] == [(10, 2)]
    assert frames[0].snapshots[0].regions["nr_accesses"].tolist() == [7]
    assert sorted(p.name for p in directory.iterdir()) == ["latest.kdr"]
