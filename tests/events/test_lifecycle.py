"""A target's exit ends the engine's monitoring within the aggregation interval it happens in."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from kdamon.engine.core import Callbacks, Monitor
from kdamon.engine.ops.base import Operations, SchemeOps
from kdamon.engine.ops.patterns import SyntheticPattern
from kdamon.engine.ops.synthetic import SyntheticOps
from kdamon.events.lifecycle import exit_aware
from kdamon.events.proc import ProcessWatcher
from kdamon.model import Context, Intervals, Target

AGGR_US = 100_000


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen(["sleep", "600"])
    yield child
    child.kill()
    child.wait()


def test_exit_stops_the_engine_in_the_same_aggregation(sleeper: subprocess.Popen[bytes]) -> None:
    context = Context(targets=(Target(pid=sleeper.pid),), intervals=Intervals(sample_us=5_000, aggr_us=AGGR_US))
    aggregations: list[int] = []

    with ProcessWatcher([sleeper.pid], backend="pidfd") as watcher:

        def after_aggregation(monitor: Monitor) -> None:
            aggregations.append(monitor.ctx.clock.now_ns())
            if len(aggregations) == 3:
                sleeper.kill()
                assert watcher.wait_exit(30) is not None  # delivered before the next check

        ops = exit_aware(SyntheticOps([SyntheticPattern(size=64 << 20, hot_size=4 << 20)]), watcher)
        monitor = Monitor(context, ops, callbacks=Callbacks(after_aggregation=after_aggregation), seed=1)
        monitor.run_virtual(duration_us=50 * AGGR_US)

    assert len(aggregations) == 3
    # stopped at the first check after the exit: no further sampling interval ran
    assert monitor.ctx.clock.now_ns() == aggregations[-1]


def test_other_primitives_are_delegated(sleeper: subprocess.Popen[bytes]) -> None:
    inner = SyntheticOps([SyntheticPattern(size=64 << 20, hot_size=4 << 20)])
    with ProcessWatcher([sleeper.pid], backend="pidfd") as watcher:
        ops = exit_aware(inner, watcher)
        assert isinstance(ops, Operations) and isinstance(ops, SchemeOps)
        assert ops.name == "synthetic"
        assert ops.score_kind("pageout") == "cold"
        assert ops.applied is inner.applied
