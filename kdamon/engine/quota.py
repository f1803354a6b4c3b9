"""DAMOS quotas: charge windows, the effective size quota and region scores (§9.9).

Follows ``damos_adjust_quota()``, ``damos_set_effective_quota()``,
``damon_feed_loop_next_input()`` and ``damon_hot_score()`` of Linux 6.12.

Deliberate differences:

* the effective quota is computed when the first charge window opens, as the
  kernel's fix for the unlimited first window (tagged for stable 5.16+) does,
  and a time quota never gives less than one minimum region;
* with the ``temporal`` goal tuner (7.1) a met goal lets the scheme apply
  nothing during the window (the kernel's ``esz_bp = 0`` reads as "no
  quota", a known problem under discussion upstream).
"""

from __future__ import annotations

import attrs

from kdamon.engine.metrics import SystemMetrics
from kdamon.errors import EngineError
from kdamon.model.config import Quota, QuotaGoal, QuotaWeights

__all__ = [
    "MAX_SCORE",
    "QuotaState",
    "SUPPORTED_GOAL_METRICS",
    "feed_loop_next_input",
    "hot_score",
    "quota_enabled",
]

MAX_SCORE = 99
"""``DAMOS_MAX_SCORE``: scores run from 0 (least wanted) to 99."""

SUPPORTED_GOAL_METRICS = ("user_input", "some_mem_psi_us", "node_mem_used_bp", "node_mem_free_bp")

_ULONG_MAX = 2**64 - 1
_MAX_SUBSCORE = 100
_MAX_AGE_IN_LOG = 32


def feed_loop_next_input(last_input: int, score: int) -> int:
    """``damon_feed_loop_next_input()``: the next input to bring ``score`` to 10000.

    Input and score are assumed proportional; the step is ``last_input`` times
    the relative error, the result at least 10000.
    """
    goal = min_input = 10000
    if score == goal:
        return last_input
    if score >= 2 * goal:
        return min_input
    compensation = last_input * abs(goal - score) // goal
    if score > goal:
        return max(last_input - compensation, min_input)
    return min(last_input + compensation, _ULONG_MAX)


def quota_enabled(quota: Quota) -> bool:
    """Whether the scheme has any quota (time, size or goals) at all."""
    return bool(quota.ms or quota.bytes or quota.goals)


def hot_score(nr_accesses: int, age: int, max_nr_accesses: int, aggr_us: int, weights: QuotaWeights) -> int:
    """``damon_hot_score()``: 0 (cold) to 99 (hot) from frequency and age.

    ``nr_accesses`` is the moving-sum count (``nr_accesses_bp / 10000``).
    With both weights 0 every region scores 0.
    """
    freq_subscore = nr_accesses * _MAX_SUBSCORE // max(max_nr_accesses, 1)
    age_in_sec = age * aggr_us // 1_000_000
    age_in_log = min(age_in_sec.bit_length(), _MAX_AGE_IN_LOG)
    if freq_subscore == 0:
        age_in_log = -age_in_log
    age_subscore = (age_in_log + _MAX_AGE_IN_LOG) * _MAX_SUBSCORE // _MAX_AGE_IN_LOG // 2
    freq_weight, age_weight = weights.nr_accesses_permil, weights.age_permil
    hotness = freq_weight * freq_subscore + age_weight * age_subscore
    if freq_weight + age_weight:
        hotness //= freq_weight + age_weight
    return hotness * MAX_SCORE // _MAX_SUBSCORE


@attrs.define
class _GoalState:
    goal: QuotaGoal
    current_value: int
    last_psi_total_us: int = 0


@attrs.define
class QuotaState:
    """The running state of one scheme's quota (``struct damos_quota`` internals)."""

    quota: Quota
    goals: list[_GoalState]
    esz: int = 0
    """Effective size quota of the current window in bytes; 0 = no limit."""
    esz_bp: int = 0
    charged_sz: int = 0
    charged_from_ns: int | None = None
    total_charged_sz: int = 0
    total_charged_ns: int = 0
    charge_target_from: int | None = None
    """Index of the target where the last window ran out of quota."""
    charge_addr_from: int = 0
    min_score: int = 0
    nothing_allowed: bool = False
    """A met ``temporal`` goal: apply nothing until the next window."""

    @classmethod
    def for_quota(cls, quota: Quota) -> QuotaState:
        for goal in quota.goals:
            if goal.metric not in SUPPORTED_GOAL_METRICS:
                raise EngineError(
                    f"quota goal metric {goal.metric!r} is not supported by the "
                    f"pure-Python engine (it supports "
                    f"{', '.join(SUPPORTED_GOAL_METRICS)}); use the kernel "
                    "driver or another metric"
                )
        return cls(quota, [_GoalState(g, g.current_value) for g in quota.goals])

    @property
    def exhausted(self) -> bool:
        return self.nothing_allowed or bool(self.esz and self.charged_sz >= self.esz)

    def set_user_input(self, goal_index: int, value: int) -> None:
        """Feed the current value of a ``user_input`` goal (like ``commit_schemes_quota_goals``)."""
        self.goals[goal_index].current_value = value

    def _goal_score(self, metrics: SystemMetrics) -> int:
        """``damos_quota_score()``: the highest current/target ratio, in 1/10000."""
        highest = 0
        for state in self.goals:
            goal = state.goal
            if goal.metric == "some_mem_psi_us":
                total = metrics.some_mem_psi_total_us()
                state.current_value = total - state.last_psi_total_us
                state.last_psi_total_us = total
            elif goal.metric in ("node_mem_used_bp", "node_mem_free_bp"):
                state.current_value = metrics.node_mem_bp(goal.nid, used=goal.metric == "node_mem_used_bp")
            highest = max(highest, state.current_value * 10000 // max(goal.target_value, 1))
        return highest

    def _set_effective(self, metrics: SystemMetrics, min_region: int, page_size: int) -> None:
        """``damos_set_effective_quota()``."""
        quota = self.quota
        self.nothing_allowed = False
        if not quota.ms and not quota.goals:
            self.esz = quota.bytes
            return
        esz = _ULONG_MAX
        if quota.goals:
            score = self._goal_score(metrics)
            if quota.goal_tuner == "temporal":
                self.nothing_allowed = score >= 10000
                self.esz_bp = (quota.bytes or _ULONG_MAX) * 10000
            else:
                self.esz_bp = feed_loop_next_input(max(self.esz_bp, 10000), score)
            esz = self.esz_bp // 10000
        if quota.ms:
            if self.total_charged_ns:
                throughput = self.total_charged_sz * 1_000_000 // self.total_charged_ns
            else:
                throughput = page_size * 1024
            esz = max(min(throughput * quota.ms, esz), min_region)
        if quota.bytes and quota.bytes < esz:
            esz = quota.bytes
        self.esz = esz

    def start_window_if_due(self, now_ns: int, metrics: SystemMetrics, min_region: int, page_size: int) -> bool:
        """Open the first or a new charge window when due; True if the quota was
        used up in the window that just ended (the caller counts ``qt_exceeds``)."""
        if self.charged_from_ns is None:
            self.charged_from_ns = now_ns
            self._set_effective(metrics, min_region, page_size)
            return False
        if now_ns - self.charged_from_ns < self.quota.reset_interval_ms * 1_000_000:
            return False
        exceeded = bool(self.esz and self.charged_sz >= self.esz)
        self.total_charged_sz += self.charged_sz
        self.charged_from_ns = now_ns
        self.charged_sz = 0
        self._set_effective(metrics, min_region, page_size)
        return exceeded
