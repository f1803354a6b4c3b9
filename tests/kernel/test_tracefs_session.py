"""TraceSession against a fake tracefs: instance life cycle and streaming."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fake_tracefs import FakeTracefs
from kdamon.errors import FeatureMissingError
from kdamon.kernel.sysfs_io import SysfsIO
from kdamon.kernel.tracefs import TraceSession, damon_events, find_tracefs, remove_stale_instances
from kdamon.model import SchemeApply
from kdamon.model.snapshot import Snapshot
from kdamon.trace.events import AGGREGATED, BEFORE_APPLY
from kdamon.trace.synth import pages, text_line

PID = 231


def aggregation(t0: int, nr: int = 4, acc: int = 3) -> list[tuple[int, str, tuple[int, ...]]]:
    return [(t0 + i, AGGREGATED, (0, nr, i * 4096, i * 4096 + 4096, acc, 1)) for i in range(nr)]


def session(fs: FakeTracefs, **kw: object) -> TraceSession:
    return TraceSession(PID, root=fs.root, io=SysfsIO(fs), poll_s=0, sleep=lambda _s: None, **kw)  # type: ignore[arg-type]


def instances(fs: FakeTracefs) -> list[str]:
    return os.listdir(fs.root / "instances")


@pytest.mark.parametrize("raw", [True, False])
def test_streams_records_and_removes_the_instance(tmp_path: Path, raw: bool) -> None:
    fs = FakeTracefs(tmp_path / "tracing")
    events = aggregation(1_000_000_000) + [(1_000_000_100, BEFORE_APPLY, (0, 0, 0, 0, 4096, 3, 1, 4))]
    events += aggregation(1_100_000_000, acc=5)
    # The kdamond migrated: its second aggregation is on cpu1.
    fs.raw_data = {0: b"".join(pages(events[:5], PID)), 1: b"".join(pages(events[5:], PID))}
    fs.text_data = "".join(text_line(PID, t, n, v) for t, n, v in events)
    rounds = iter([False, True])
    with session(fs, raw=raw) as s:
        name = s.instance.name
        assert instances(fs) == [name] and name.startswith(f"kdamon-{os.getpid()}-")
        records = list(s.records(until=lambda: next(rounds)))
        assert s.lost_events() == 0
    assert instances(fs) == []
    snaps = [r for r in records if isinstance(r, Snapshot)]
    assert [s.regions["nr_accesses"].tolist() for s in snaps] == [[3] * 4, [5] * 4]
    assert [r for r in records if isinstance(r, SchemeApply)][0].region.end == 4096
    written = dict(fs.writes)
    assert written[f"instances/{name}/events/damon/damon_aggregated/filter"] == f"common_pid == {PID}"
    assert written[f"instances/{name}/trace_clock"] == "mono"  # stamps comparable with CLOCK_MONOTONIC
    assert written[f"instances/{name}/events/damon/damon_aggregated/enable"] == "0"  # disabled at exit
    assert f"instances/{name}/events/damon/damon_monitor_intervals_tune/enable" in written


def test_instance_removed_on_error_and_on_ctrl_c(tmp_path: Path) -> None:
    fs = FakeTracefs(tmp_path / "tracing")
    with pytest.raises(RuntimeError):
        with session(fs):
            raise RuntimeError("boom")
    assert instances(fs) == []

    def interrupt() -> bool:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        with session(fs) as s:
            for _ in s.records(until=interrupt):
                pass
    assert instances(fs) == []


def test_kernel_without_damon_events_is_refused_and_cleaned_up(tmp_path: Path) -> None:
    fs = FakeTracefs(tmp_path / "tracing", events=())
    with pytest.raises(FeatureMissingError, match="no DAMON trace events"):
        with session(fs):
            pass
    assert instances(fs) == []


def test_older_kernel_without_intervals_tune_still_traces(tmp_path: Path) -> None:
    fs = FakeTracefs(tmp_path / "tracing", events=(AGGREGATED, BEFORE_APPLY))
    with session(fs) as s:
        assert s.events == (AGGREGATED, BEFORE_APPLY)


def test_lost_events_sum_overruns(tmp_path: Path) -> None:
    fs = FakeTracefs(tmp_path / "tracing", cpus=3)
    fs.overrun = {0: 5, 2: 7}
    with session(fs) as s:
        assert s.lost_events() == 12


def test_find_tracefs_and_stale_instances(tmp_path: Path) -> None:
    fs = FakeTracefs(tmp_path / "tracing")
    io = SysfsIO(fs)
    assert find_tracefs(io, (tmp_path / "nope", fs.root)) == fs.root
    with pytest.raises(FeatureMissingError, match="mount"):
        find_tracefs(io, (tmp_path / "nope",))
    dead = 2**22 + 12345  # above pid_max's default: no such process
    for name in (f"kdamon-{dead}-0-1", f"kdamon-{os.getpid()}-0-1", "someone-else"):
        (fs.root / "instances" / name).mkdir()
    assert remove_stale_instances(io, fs.root) == [f"kdamon-{dead}-0-1"]
    assert sorted(instances(fs)) == [f"kdamon-{os.getpid()}-0-1", "someone-else"]


def test_damon_events_are_those_with_an_enable_file(tmp_path: Path) -> None:
    """6.1 has damon_aggregated only; damos_before_apply came in 6.7 (record says so when a scheme runs)."""
    (tmp_path / "events" / "damon" / "damon_aggregated").mkdir(parents=True)
    (tmp_path / "events" / "damon" / "damon_aggregated" / "enable").write_text("0\n")
    (tmp_path / "events" / "damon" / "damos_before_apply").mkdir()  # a directory without its enable file
    assert damon_events(SysfsIO(), tmp_path) == ("damon_aggregated",)
