"""From a ``Kdamond`` to the list of sysfs writes that stage it.

A plan is the ``nr_*`` counts (top-down, so each count's directory exists by
the time it is written) and every leaf value, each with the kernel's default
for that file and the release that introduced it: a leaf whose file is
missing is fine when its value is the default (the kernel behaves the same
without the feature) and a ``FeatureMissingError`` otherwise.

Paths are relative to the kdamond directory ``kdamonds/<K>``.
"""

from __future__ import annotations

import attrs

from kdamon.kernel.sysfs_io import Value
from kdamon.model import (
    CORE_FILTER_TYPES,
    Context,
    Filter,
    Kdamond,
    Quota,
    Scheme,
    Target,
)

__all__ = ["Count", "Leaf", "Plan", "canonical", "plan_kdamond"]


@attrs.frozen
class Count:
    """An ``nr_*`` file and the number of children it must have."""

    path: str
    value: int
    field: str
    since: str


@attrs.frozen
class Leaf:
    """One value file: what to write, the kernel default, and its first release."""

    path: str
    value: Value
    default: Value
    field: str
    since: str


@attrs.frozen
class Plan:
    counts: tuple[Count, ...]
    leaves: tuple[Leaf, ...]


class _Builder:
    def __init__(self) -> None:
        self.counts: list[Count] = []
        self.leaves: list[Leaf] = []

    def count(self, path: str, value: int, field: str, since: str = "5.18") -> None:
        self.counts.append(Count(path, value, field, since))

    def leaf(self, path: str, value: Value, default: Value, field: str, since: str = "5.18") -> None:
        self.leaves.append(Leaf(path, value, default, field, since))


def filter_dir(flt: Filter, layered: bool) -> str:
    """The directory of a filter: by type on kernels with layer directories (6.15+)."""
    if not layered:
        return "filters"
    core = flt.type in CORE_FILTER_TYPES
    return "core_filters" if core else "ops_filters"


def canonical(kdamond: Kdamond, *, layered: bool) -> Kdamond:
    """The form ``read()`` returns for ``kdamond`` once staged.

    Filters come back grouped by directory (core layer first where the kernel
    has layer directories), with layer ``auto`` and only their type's own
    fields; an explicit ``consist`` goal tuner reads back as None (the
    default); a goal's ``path`` only for the memcg metrics that use it.
    """
    order = ("core_filters", "ops_filters", "filters")

    def flt(f: Filter) -> Filter:
        own = {"type": f.type, "matching": f.matching, "allow": f.allow}
        if f.type == "memcg":
            own["memcg_path"] = f.memcg_path
        elif f.type == "addr":
            own |= {"addr_start": f.addr_start, "addr_end": f.addr_end}
        elif f.type == "target":
            own["target_idx"] = f.target_idx
        elif f.type == "hugepage_size":
            own |= {"min": f.min, "max": f.max}
        return Filter(**own)  # type: ignore[arg-type]

    def quota(q: Quota) -> Quota:
        goals = tuple(
            attrs.evolve(g, path=g.path if g.metric.startswith("node_memcg_") else "")
            for g in q.goals
        )
        tuner = None if q.goal_tuner == "consist" else q.goal_tuner
        return attrs.evolve(q, goals=goals, goal_tuner=tuner)

    def scheme(s: Scheme) -> Scheme:
        filters = sorted(s.filters, key=lambda f: order.index(filter_dir(f, layered)))
        return attrs.evolve(s, filters=tuple(flt(f) for f in filters), quota=quota(s.quota))

    contexts = tuple(
        attrs.evolve(c, schemes=tuple(scheme(s) for s in c.schemes)) for c in kdamond.contexts
    )
    return attrs.evolve(kdamond, contexts=contexts)


def _target(b: _Builder, t: Target, path: str, field: str) -> None:
    b.leaf(f"{path}/pid_target", t.pid if t.pid is not None else 0, 0, f"{field}.pid")
    b.leaf(f"{path}/obsolete_target", t.obsolete, False, f"{field}.obsolete", "6.19")
    b.count(f"{path}/regions/nr_regions", len(t.regions), f"{field}.regions")
    for ri, r in enumerate(t.regions):
        b.leaf(f"{path}/regions/{ri}/start", r.start, 0, f"{field}.regions[{ri}].start")
        b.leaf(f"{path}/regions/{ri}/end", r.end, 0, f"{field}.regions[{ri}].end")


def _quota(b: _Builder, q: Quota, path: str, field: str) -> None:
    b.leaf(f"{path}/ms", q.ms, 0, f"{field}.ms")
    b.leaf(f"{path}/bytes", q.bytes, 0, f"{field}.bytes")
    b.leaf(f"{path}/reset_interval_ms", q.reset_interval_ms, 0, f"{field}.reset_interval_ms")
    w = q.weights
    b.leaf(f"{path}/weights/sz_permil", w.sz_permil, 0, f"{field}.weights.sz_permil")
    b.leaf(f"{path}/weights/nr_accesses_permil", w.nr_accesses_permil, 0,
           f"{field}.weights.nr_accesses_permil")
    b.leaf(f"{path}/weights/age_permil", w.age_permil, 0, f"{field}.weights.age_permil")
    b.leaf(f"{path}/goal_tuner", q.goal_tuner or "consist", "consist", f"{field}.goal_tuner", "7.1")
    b.leaf(f"{path}/fail_charge_num", q.fail_charge_num, 0, f"{field}.fail_charge_num", "7.2")
    b.leaf(f"{path}/fail_charge_denom", q.fail_charge_denom, 0, f"{field}.fail_charge_denom", "7.2")
    b.count(f"{path}/goals/nr_goals", len(q.goals), f"{field}.goals", "6.8")
    for gi, g in enumerate(q.goals):
        gp, gf = f"{path}/goals/{gi}", f"{field}.goals[{gi}]"
        b.leaf(f"{gp}/target_metric", g.metric, "user_input", f"{gf}.metric", "6.9")
        b.leaf(f"{gp}/target_value", g.target_value, 0, f"{gf}.target_value", "6.8")
        b.leaf(f"{gp}/current_value", g.current_value, 0, f"{gf}.current_value", "6.8")
        b.leaf(f"{gp}/nid", g.nid, 0, f"{gf}.nid", "6.16")
        if g.metric.startswith("node_memcg_"):
            b.leaf(f"{gp}/path", g.path, "", f"{gf}.path", "6.19")


def _filter(b: _Builder, f: Filter, path: str, field: str) -> None:
    b.leaf(f"{path}/type", f.type, "anon", f"{field}.type", "6.3")
    b.leaf(f"{path}/matching", f.matching, False, f"{field}.matching", "6.3")
    b.leaf(f"{path}/allow", f.allow, False, f"{field}.allow", "6.14")
    if f.type == "memcg":
        b.leaf(f"{path}/memcg_path", f.memcg_path, "", f"{field}.memcg_path", "6.3")
    elif f.type == "addr":
        b.leaf(f"{path}/addr_start", f.addr_start, 0, f"{field}.addr_start", "6.6")
        b.leaf(f"{path}/addr_end", f.addr_end, 0, f"{field}.addr_end", "6.6")
    elif f.type == "target":
        b.leaf(f"{path}/damon_target_idx", f.target_idx, 0, f"{field}.target_idx", "6.6")
    elif f.type == "hugepage_size":
        b.leaf(f"{path}/min", f.min, 0, f"{field}.min", "6.15")
        b.leaf(f"{path}/max", f.max, 0, f"{field}.max", "6.15")


def _scheme(b: _Builder, s: Scheme, path: str, field: str, layered: bool) -> None:
    b.leaf(f"{path}/action", s.action, "stat", f"{field}.action")
    b.leaf(f"{path}/apply_interval_us", s.apply_interval_us, 0, f"{field}.apply_interval_us", "6.7")
    b.leaf(f"{path}/target_nid", s.target_nid, -1, f"{field}.target_nid", "6.11")
    p = s.access_pattern
    for name, lo, hi in (
        ("sz", p.sz_min, p.sz_max),
        ("nr_accesses", p.nr_accesses_min, p.nr_accesses_max),
        ("age", p.age_min, p.age_max),
    ):
        b.leaf(f"{path}/access_pattern/{name}/min", lo, 0, f"{field}.access_pattern.{name}_min")
        b.leaf(f"{path}/access_pattern/{name}/max", hi, 0, f"{field}.access_pattern.{name}_max")
    _quota(b, s.quota, f"{path}/quotas", f"{field}.quota")
    wm = s.watermarks
    for name in ("metric", "interval_us", "high", "mid", "low"):
        default: Value = "none" if name == "metric" else 0
        b.leaf(f"{path}/watermarks/{name}", getattr(wm, name), default, f"{field}.watermarks.{name}")
    by_dir: dict[str, list[tuple[int, Filter]]] = {}
    for fi, f in enumerate(s.filters):
        by_dir.setdefault(filter_dir(f, layered), []).append((fi, f))
    # On layered kernels the deprecated filters/ is kept empty.
    for dirname in ("core_filters", "ops_filters", "filters") if layered else ("filters",):
        since = "6.3" if dirname == "filters" else "6.15"
        members = by_dir.get(dirname, [])
        b.count(f"{path}/{dirname}/nr_filters", len(members), f"{field}.filters", since)
        for k, (fi, f) in enumerate(members):
            _filter(b, f, f"{path}/{dirname}/{k}", f"{field}.filters[{fi}]")
    b.count(f"{path}/dests/nr_dests", len(s.dests), f"{field}.dests", "6.17")
    for di, d in enumerate(s.dests):
        b.leaf(f"{path}/dests/{di}/id", d.id, 0, f"{field}.dests[{di}].id", "6.17")
        b.leaf(f"{path}/dests/{di}/weight", d.weight, 0, f"{field}.dests[{di}].weight", "6.17")
    b.leaf(f"{path}/stats/max_nr_snapshots", s.max_nr_snapshots, 0, f"{field}.max_nr_snapshots", "7.0")


def _context(b: _Builder, c: Context, path: str, field: str, layered: bool) -> None:
    b.leaf(f"{path}/operations", c.ops, "vaddr", f"{field}.ops")
    b.leaf(f"{path}/addr_unit", c.addr_unit, 1, f"{field}.addr_unit", "6.18")
    b.leaf(f"{path}/pause", c.pause, False, f"{field}.pause", "7.2")
    iv, ip = c.intervals, f"{path}/monitoring_attrs/intervals"
    b.leaf(f"{ip}/sample_us", iv.sample_us, 5000, f"{field}.intervals.sample_us")
    b.leaf(f"{ip}/aggr_us", iv.aggr_us, 100000, f"{field}.intervals.aggr_us")
    b.leaf(f"{ip}/update_us", iv.update_us, 60000000, f"{field}.intervals.update_us")
    for name in ("access_bp", "aggrs", "min_sample_us", "max_sample_us"):
        b.leaf(f"{ip}/intervals_goal/{name}", getattr(iv.goal, name), 0,
               f"{field}.intervals.goal.{name}", "6.15")
    nr = c.nr_regions
    b.leaf(f"{path}/monitoring_attrs/nr_regions/min", nr.min, 10, f"{field}.nr_regions.min")
    b.leaf(f"{path}/monitoring_attrs/nr_regions/max", nr.max, 1000, f"{field}.nr_regions.max")
    b.count(f"{path}/targets/nr_targets", len(c.targets), f"{field}.targets")
    for ti, t in enumerate(c.targets):
        _target(b, t, f"{path}/targets/{ti}", f"{field}.targets[{ti}]")
    b.count(f"{path}/schemes/nr_schemes", len(c.schemes), f"{field}.schemes")
    for si, s in enumerate(c.schemes):
        _scheme(b, s, f"{path}/schemes/{si}", f"{field}.schemes[{si}]", layered)


def plan_kdamond(kdamond: Kdamond, *, layered: bool) -> Plan:
    """The writes that stage ``kdamond``; ``layered``: the kernel has ``core_filters/``."""
    b = _Builder()
    b.leaf("refresh_ms", kdamond.refresh_ms, 0, "refresh_ms", "6.17")
    b.count("contexts/nr_contexts", len(kdamond.contexts), "contexts")
    for ci, c in enumerate(kdamond.contexts):
        _context(b, c, f"contexts/{ci}", f"contexts[{ci}]", layered)
    # Counts are applied top-down before any leaf: keep them in creation order.
    return Plan(tuple(b.counts), tuple(b.leaves))
