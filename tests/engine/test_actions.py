"""The engine refuses schemes whose action it cannot apply, or only counts them (stat_only)."""

from __future__ import annotations

import os

import pytest

from engine_helpers import RecordingOps
from kdamon.engine.actions import applied_actions, counted_only
from kdamon.engine.core import Callbacks, Monitor
from kdamon.engine.ops.madvise import ProcessAdvisor
from kdamon.engine.ops.patterns import SyntheticPattern
from kdamon.engine.ops.synthetic import SyntheticOps, synthetic_context
from kdamon.errors import EngineError
from kdamon.model.config import ACTIONS, Context, Intervals, Scheme, Target
from kdamon.model.snapshot import Snapshot

INTERVALS = Intervals(sample_us=1000, aggr_us=10_000, update_us=100_000)
MADVISE = {"willneed", "cold", "pageout", "collapse"}


def context(ops: str, *actions: str) -> Context:
    target = Target(pid=1) if ops != "paddr" else Target()
    return Context(ops=ops, targets=(target,), schemes=tuple(Scheme(action=a) for a in actions))


@pytest.mark.parametrize("ops", ["vaddr", "fvaddr"])
def test_vaddr_applies_what_process_madvise_takes(ops: str) -> None:
    assert set(applied_actions(ops)) == MADVISE
    unapplied = counted_only(context(ops, *ACTIONS))
    assert {action for _, action in unapplied.schemes} == set(ACTIONS) - MADVISE - {"stat"}
    assert unapplied.indexes == tuple(i for i, a in enumerate(ACTIONS) if a not in MADVISE | {"stat"})


def test_paddr_applies_nothing_but_stat_runs() -> None:
    assert applied_actions("paddr") == ()
    assert not counted_only(context("paddr", "stat", "stat"))
    unapplied = counted_only(context("paddr", "stat", "pageout"))
    assert unapplied.schemes == ((1, "pageout"),)
    assert "applies no action there (user space cannot act on physical page frames)" in unapplied.explain()


def test_monitor_refuses_before_probing_and_names_what_it_applies() -> None:
    # pid 1 is never probed: the refusal comes first
    with pytest.raises(EngineError) as raised:
        Monitor(context("vaddr", "pageout", "hugepage", "migrate_hot"))
    message = str(raised.value)
    assert "cannot apply hugepage (scheme 1) or migrate_hot (scheme 2) to vaddr targets" in message
    assert "applies only willneed, cold, pageout and collapse there" in message
    assert "stat_only=True" in message
    with pytest.raises(EngineError, match="to paddr targets: it applies no action there"):
        Monitor(context("paddr", "lru_prio"))


def test_operations_without_scheme_support_apply_nothing() -> None:
    ops = RecordingOps([])
    with pytest.raises(EngineError, match="cannot apply cold \\(scheme 0\\) to recording targets"):
        Monitor(synthetic_context(1, intervals=INTERVALS, schemes=(Scheme(action="cold"),)), ops)
    every = synthetic_context(1, intervals=INTERVALS, schemes=tuple(Scheme(action=a) for a in ACTIONS))
    assert not counted_only(every, SyntheticOps([SyntheticPattern()]))


def run(action: str, *, stat_only: bool) -> tuple[Monitor, list[tuple[Snapshot, ...]]]:
    seen: list[tuple[Snapshot, ...]] = []
    monitor = Monitor(
        synthetic_context(1, intervals=INTERVALS, schemes=(Scheme(action=action),)),
        RecordingOps([]),
        seed=3,
        stat_only=stat_only,
        callbacks=Callbacks(after_aggregation=lambda m: seen.append(m.snapshots())),
    )
    monitor.run_virtual(50 * INTERVALS.aggr_us)
    return monitor, seen


def test_stat_only_runs_the_scheme_as_a_stat_scheme() -> None:
    counted, counted_seen = run("hugepage", stat_only=True)
    stat, stat_seen = run("stat", stat_only=False)
    assert counted.counted_only == (0,) and stat.counted_only == ()
    assert counted.config.schemes[0].action == "hugepage"  # the configuration is the user's
    stats = counted.scheme_stats()[0]
    assert stats.nr_tried > 0 and (stats.nr_applied, stats.sz_applied) == (0, 0)
    assert counted.scheme_stats() == stat.scheme_stats()
    # a stat scheme leaves the regions' ages alone, as the kernel's does
    assert counted_seen == stat_seen
    assert max(int(s.regions["age"].max()) for (s,) in counted_seen) > 10


def test_an_action_without_advice_is_an_error_not_a_silent_zero() -> None:
    advisor = ProcessAdvisor(os.getpid())
    try:
        with pytest.raises(EngineError, match="hugepage has no process_madvise"):
            advisor.advise(0, 4096, "hugepage")
    finally:
        advisor.close()
