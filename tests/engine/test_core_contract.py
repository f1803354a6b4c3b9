"""The loop's contract: call order of primitives and callbacks, stop semantics, clocks."""

from __future__ import annotations

import pytest

from engine_helpers import RecordingOps
from kdamon.engine.clock import RealClock, VirtualClock
from kdamon.engine.core import Callbacks, Monitor
from kdamon.engine.ops.synthetic import synthetic_context
from kdamon.errors import EngineError
from kdamon.model.config import Intervals

# two samples per aggregation, an ops update every four samples
INTERVALS = Intervals(sample_us=1000, aggr_us=2000, update_us=4000)
ITERATION = ["prepare_access_checks", "after_sampling", "check_accesses"]
AGGREGATION = ["after_aggregation", "reset_aggregated"]


def logging_callbacks(log: list[str], stop_in: str | None = None, stop_at: int = 0) -> Callbacks:
    counts: dict[str, int] = {}

    def make(name: str):  # type: ignore[no-untyped-def]
        def callback(monitor: Monitor) -> bool:
            log.append(name)
            counts[name] = counts.get(name, 0) + 1
            return name == stop_in and counts[name] == stop_at

        return callback

    return Callbacks(
        before_start=make("before_start"),
        after_sampling=make("after_sampling"),
        after_aggregation=make("after_aggregation"),
        before_terminate=make("before_terminate"),
    )


def run_logged(iterations: int, stop_in: str | None = None, stop_at: int = 0, nr_targets: int = 1) -> list[str]:
    log: list[str] = []
    monitor = Monitor(
        synthetic_context(nr_targets, intervals=INTERVALS),
        RecordingOps(log),
        callbacks=logging_callbacks(log, stop_in, stop_at),
        seed=0,
    )
    monitor.run_virtual(iterations * INTERVALS.sample_us)
    return log


def test_call_order_of_primitives_and_callbacks() -> None:
    log = run_logged(4)
    expected = (
        ["init", "before_start"]
        + ITERATION
        + ITERATION
        + AGGREGATION
        + ITERATION
        + ITERATION
        + AGGREGATION
        + ["update"]
        + ["before_terminate", "cleanup"]
    )
    assert log == expected


def test_true_from_after_sampling_finishes_the_iteration_then_stops() -> None:
    log = run_logged(10, stop_in="after_sampling", stop_at=2)
    expected = ["init", "before_start"] + ITERATION + ITERATION + AGGREGATION + ["before_terminate", "cleanup"]
    assert log == expected


def test_true_from_after_aggregation_stops_after_that_iteration() -> None:
    log = run_logged(10, stop_in="after_aggregation", stop_at=2)
    expected = (
        ["init", "before_start"] + (ITERATION + ITERATION + AGGREGATION) * 2 + ["update", "before_terminate", "cleanup"]
    )
    assert log == expected


def test_true_from_before_start_runs_no_iteration() -> None:
    log = run_logged(10, stop_in="before_start", stop_at=1)
    assert log == ["init", "before_start", "before_terminate", "cleanup"]


def test_all_targets_invalid_stops_the_monitor() -> None:
    log: list[str] = []
    samples = {"n": 0}

    def valid(target: object) -> bool:
        return samples["n"] < 3

    def after_sampling(monitor: Monitor) -> None:
        samples["n"] += 1

    ops = RecordingOps(log, valid=valid)
    monitor = Monitor(
        synthetic_context(2, intervals=INTERVALS), ops, callbacks=Callbacks(after_sampling=after_sampling)
    )
    monitor.run_virtual(1_000_000)
    assert log.count("check_accesses") == 3
    assert log[-1] == "cleanup"
    assert not monitor.running


def test_one_valid_target_keeps_the_monitor_running() -> None:
    log: list[str] = []
    ops = RecordingOps(log, valid=lambda target: target.index == 1)  # type: ignore[attr-defined]
    monitor = Monitor(synthetic_context(2, intervals=INTERVALS), ops)
    monitor.run_virtual(10 * INTERVALS.sample_us)
    assert log.count("check_accesses") == 10


def test_no_targets_means_none_valid() -> None:
    log: list[str] = []
    monitor = Monitor(synthetic_context(0, intervals=INTERVALS), RecordingOps(log), callbacks=logging_callbacks(log))
    monitor.run_virtual(1_000_000)
    assert log == ["init", "before_start", "before_terminate", "cleanup"]


def test_virtual_run_advances_virtual_time_only() -> None:
    clock = VirtualClock()
    log: list[str] = []
    monitor = Monitor(synthetic_context(1, intervals=INTERVALS), RecordingOps(log), clock=clock)
    monitor.run_virtual(50 * INTERVALS.sample_us)
    assert clock.now_ns() == 50 * INTERVALS.sample_us * 1000
    assert monitor.ctx.passed_sample_intervals == 50


def test_snapshots_carry_clock_time_and_intervals() -> None:
    seen = []

    def after_aggregation(monitor: Monitor) -> None:
        seen.append(monitor.snapshots())

    monitor = Monitor(
        synthetic_context(2, intervals=INTERVALS),
        RecordingOps([]),
        callbacks=Callbacks(after_aggregation=after_aggregation),
        kdamond_idx=3,
        context_idx=0,
    )
    monitor.run_virtual(4 * INTERVALS.sample_us)
    assert [[s.time_ns for s in snaps] for snaps in seen] == [[2_000_000] * 2, [4_000_000] * 2]
    first = seen[0][1]
    assert (first.kdamond_idx, first.target_idx, first.sample_us, first.aggr_us) == (3, 1, 1000, 2000)
    # RecordingOps reports every sample accessed: two samples per aggregation
    assert {r.nr_accesses for r in first.states()} == {2}
    assert monitor.last_snapshots == seen[-1]


def test_a_monitor_runs_once() -> None:
    monitor = Monitor(synthetic_context(1, intervals=INTERVALS), RecordingOps([]))
    monitor.run_virtual(1000)
    with pytest.raises(EngineError, match="runs once"):
        monitor.run_virtual(1000)


def test_ctx_before_start_is_an_error() -> None:
    monitor = Monitor(synthetic_context(1, intervals=INTERVALS), RecordingOps([]))
    with pytest.raises(EngineError, match="not started"):
        _ = monitor.ctx


def test_run_virtual_refuses_a_real_clock() -> None:
    monitor = Monitor(synthetic_context(1, intervals=INTERVALS), RecordingOps([]), clock=RealClock())
    with pytest.raises(EngineError, match="virtual clock"):
        monitor.run_virtual(1000)


def test_threaded_start_stop_join() -> None:
    log: list[str] = []
    monitor = Monitor(synthetic_context(1, intervals=INTERVALS), RecordingOps(log), callbacks=logging_callbacks(log))
    monitor.start()
    monitor.stop()
    assert monitor.join(timeout=30)
    assert not monitor.running
    assert log[:2] == ["init", "before_start"]
    assert log[-2:] == ["before_terminate", "cleanup"]


def test_threaded_callback_stop_ends_the_thread() -> None:
    log: list[str] = []
    monitor = Monitor(
        synthetic_context(1, intervals=INTERVALS),
        RecordingOps(log),
        callbacks=logging_callbacks(log, "after_aggregation", 1),
    )
    monitor.start()
    assert monitor.join(timeout=30)
    assert log.count("after_aggregation") == 1


def test_an_error_in_the_thread_is_raised_by_join() -> None:
    class Broken(RecordingOps):
        def check_accesses(self, ctx):  # type: ignore[no-untyped-def]
            raise RuntimeError("sensor fell off")

    log: list[str] = []
    monitor = Monitor(synthetic_context(1, intervals=INTERVALS), Broken(log))
    monitor.start()
    with pytest.raises(EngineError, match="sensor fell off"):
        monitor.join(timeout=30)
    assert log[-1] == "cleanup"


def test_every_operations_set_implements_the_protocols() -> None:
    from kdamon.engine.ops.base import Operations, SchemeOps
    from kdamon.engine.ops.paddr import PaddrOps
    from kdamon.engine.ops.patterns import SyntheticPattern
    from kdamon.engine.ops.synthetic import SyntheticOps
    from kdamon.engine.ops.vaddr import VaddrOps

    for ops in (SyntheticOps([SyntheticPattern()]), VaddrOps(["smaps"])):
        assert isinstance(ops, Operations) and isinstance(ops, SchemeOps)
        assert ops.capabilities
    for cls in (PaddrOps,):
        assert all(
            hasattr(cls, name)
            for name in (
                "init",
                "update",
                "prepare_access_checks",
                "check_accesses",
                "reset_aggregated",
                "target_valid",
                "cleanup",
                "apply_scheme",
                "score_kind",
                "capabilities",
            )
        )
    assert isinstance(RecordingOps([]), Operations)
    assert not isinstance(RecordingOps([]), SchemeOps)
