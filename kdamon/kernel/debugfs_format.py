"""The text of DAMON's debugfs files, and which parts of the model it can carry.

Pure functions: no file access.  The formats (5.15 to 6.13, see
``damon-abi.md`` §7):

* ``attrs``: ``<sample_us> <aggr_us> <update_us> <min_nr_regions> <max_nr_regions>``;
* ``target_ids``: pids separated by spaces, or ``paddr`` (read back as ``42``);
* ``init_regions`` (5.16+): ``<id> <start> <end>`` per line, where ``<id>`` is
  the target's index (5.18+) or the target's ``target_ids`` value (5.16, 5.17);
* ``schemes`` (5.16+): one scheme per line, 18 numbers (access pattern,
  action, quota, watermarks); reading appends the statistics: 2 numbers on
  5.16, 5 from 5.17.
"""

from __future__ import annotations

import re

import attrs

from kdamon.errors import KernelError
from kdamon.kernel.sysfs_nodes import Value
from kdamon.kernel.sysfs_plan import plan_kdamond
from kdamon.model import (
    AccessPattern,
    Context,
    Intervals,
    IntervalsGoal,
    Kdamond,
    NrRegions,
    Quota,
    QuotaWeights,
    Region,
    Scheme,
    SchemeStats,
    Target,
    Watermarks,
)

__all__ = [
    "ACTIONS",
    "MAX_TARGETS",
    "PADDR_ID",
    "ContextFiles",
    "Layout",
    "decode_context",
    "encode_context",
    "parse_schemes",
    "unsupported_fields",
]

ACTIONS = ("willneed", "cold", "pageout", "hugepage", "nohugepage", "stat")  # position = number
WATERMARK_METRICS = ("none", "free_mem_rate")  # position = number
PADDR_ID = 42  # what target_ids shows for the physical address space target
MAX_TARGETS = 32  # the kernel silently ignores pids after the 32nd
MAX_SCHEMES = 256  # and schemes after the 256th
_INPUT_FIELDS = 18
_STATS_FIELDS = {2: "5.16", 5: "5.17+"}
_SYSFS_HINT = "use the sysfs interface (Linux 5.18+) for it, or drop it from the configuration"


@attrs.frozen
class Layout:
    """What the running kernel's debugfs files look like."""

    schemes: bool = True  # ``schemes`` and ``init_regions`` exist (5.16+)
    region_ids_are_indices: bool = True  # ``init_regions`` ids: target index (5.18+) or target id


@attrs.frozen
class ContextFiles:
    """The text to write to each file of one context directory (``None``: leave it alone)."""

    attrs: str
    target_ids: str
    init_regions: str | None
    schemes: str | None


# The model fields the debugfs files carry (indices left out).  Any other field of the sysfs
# schema is sysfs only: refused unless it holds its default (see _sysfs_only).
_CARRIED = frozenset(
    {
        "contexts",
        "contexts.ops",
        "contexts.nr_regions.min",
        "contexts.nr_regions.max",
        *(f"contexts.intervals.{name}" for name in ("sample_us", "aggr_us", "update_us")),
        "contexts.targets",
        "contexts.targets.pid",
        "contexts.targets.regions",
        "contexts.targets.regions.start",
        "contexts.targets.regions.end",
        "contexts.schemes",
        "contexts.schemes.action",
        *(
            f"contexts.schemes.access_pattern.{name}_{bound}"
            for name in ("sz", "nr_accesses", "age")
            for bound in ("min", "max")
        ),
        *(f"contexts.schemes.quota.{name}" for name in ("ms", "bytes", "reset_interval_ms")),
        *(f"contexts.schemes.quota.weights.{name}" for name in ("sz_permil", "nr_accesses_permil", "age_permil")),
        *(f"contexts.schemes.watermarks.{name}" for name in ("metric", "interval_us", "high", "mid", "low")),
    }
)


def unsupported_fields(kdamond: Kdamond, layout: Layout) -> list[str]:
    """The fields of ``kdamond`` that the debugfs interface cannot express, as ``path: why``."""
    problems: list[str] = []
    if kdamond.refresh_ms:
        problems.append("refresh_ms: debugfs has no periodic refresh (its statistics are always live)")
    if len(kdamond.contexts) > 1:
        problems.append("contexts: one context per kdamond")
    for c, ctx in enumerate(kdamond.contexts):
        problems.extend(f"contexts[{c}].{p}" for p in _context_problems(ctx, layout))
    return problems + _sysfs_only(kdamond, [p.split(":")[0] for p in problems])


def _sysfs_only(kdamond: Kdamond, reported: list[str]) -> list[str]:
    """``path: sysfs only`` for each field with a value other than its default that the debugfs
    files do not carry and that no problem in ``reported`` covers."""
    out: list[str] = []
    plan = plan_kdamond(kdamond, layered=False)
    entries: list[tuple[str, Value, Value, str]] = [(c.field, c.value, 0, c.since) for c in plan.counts]
    entries += [(leaf.field, leaf.value, leaf.default, leaf.since) for leaf in plan.leaves]
    for field, value, default, since in entries:
        if value == default or re.sub(r"\[\d+\]", "", field) in _CARRIED:
            continue
        if any(field == r or field.startswith((f"{r}.", f"{r}[")) for r in reported):
            continue
        out.append(f"{field}: sysfs only (Linux {since}+)")
        reported.append(field)
    return out


def _context_problems(ctx: Context, layout: Layout) -> list[str]:
    out: list[str] = []
    if ctx.ops == "fvaddr":
        out.append("ops: debugfs knows only vaddr (pids) and paddr")
    if ctx.ops == "paddr" and not layout.schemes:
        out.append("ops: paddr needs Linux 5.16+")
    if ctx.addr_unit != 1:
        out.append("addr_unit: debugfs addresses are always bytes")
    if ctx.pause:
        out.append("pause: debugfs contexts cannot be paused")
    if ctx.intervals.goal != IntervalsGoal():
        out.append("intervals.goal: interval auto-tuning is sysfs only (6.15+)")
    if len(ctx.targets) > MAX_TARGETS:
        out.append(f"targets: at most {MAX_TARGETS} targets per context")
    for t, target in enumerate(ctx.targets):
        if target.regions and not layout.schemes:
            out.append(f"targets[{t}].regions: init_regions needs Linux 5.16+")
    if ctx.schemes and not layout.schemes:
        out.append("schemes: debugfs schemes need Linux 5.16+")
    if len(ctx.schemes) > MAX_SCHEMES:
        out.append(f"schemes: at most {MAX_SCHEMES} schemes per context")
    for s, scheme in enumerate(ctx.schemes):
        out.extend(f"schemes[{s}].{p}" for p in _scheme_problems(scheme))
    return out


def _scheme_problems(scheme: Scheme) -> list[str]:
    out: list[str] = []
    if scheme.action not in ACTIONS:
        out.append(f"action: debugfs knows only {', '.join(ACTIONS)}")
    p, w = scheme.access_pattern, scheme.watermarks
    if p.sz_min > p.sz_max or p.nr_accesses_min > p.nr_accesses_max or p.age_min > p.age_max:
        out.append("access_pattern: debugfs rejects a range whose min exceeds its max")
    if not w.high >= w.mid >= w.low:
        out.append("watermarks: debugfs needs high >= mid >= low even with metric none")
    return out


def encode_context(ctx: Context, layout: Layout) -> ContextFiles:
    """The files' text for ``ctx``; call ``unsupported_fields`` first."""
    iv, nr = ctx.intervals, ctx.nr_regions
    if ctx.ops == "paddr" and ctx.targets:
        target_ids = "paddr\n"
        ids = [PADDR_ID]
    else:
        pids = [t.pid for t in ctx.targets if t.pid is not None]
        target_ids = " ".join(map(str, pids)) + "\n"
        ids = pids
    regions = "".join(
        f"{i if layout.region_ids_are_indices else ids[i]} {r.start} {r.end}\n"
        for i, target in enumerate(ctx.targets)
        for r in target.regions
    )
    return ContextFiles(
        attrs=f"{iv.sample_us} {iv.aggr_us} {iv.update_us} {nr.min} {nr.max}\n",
        target_ids=target_ids,
        init_regions=regions if layout.schemes else None,
        schemes="".join(scheme_line(s) for s in ctx.schemes) if layout.schemes else None,
    )


def scheme_line(scheme: Scheme) -> str:
    """One ``schemes`` input line (18 numbers)."""
    p, q, w = scheme.access_pattern, scheme.quota, scheme.watermarks
    fields = (
        p.sz_min, p.sz_max, p.nr_accesses_min, p.nr_accesses_max, p.age_min, p.age_max,
        ACTIONS.index(scheme.action),
        q.ms, q.bytes, q.reset_interval_ms,
        q.weights.sz_permil, q.weights.nr_accesses_permil, q.weights.age_permil,
        WATERMARK_METRICS.index(w.metric), w.interval_us, w.high, w.mid, w.low,
    )  # fmt: skip
    return " ".join(map(str, fields)) + "\n"


def _ints(text: str, what: str) -> list[int]:
    try:
        return [int(x) for x in text.split()]
    except ValueError:
        raise KernelError(f"unexpected content in debugfs {what}: {text!r}; is this DAMON's debugfs?") from None


def parse_attrs(text: str) -> tuple[Intervals, NrRegions]:
    values = _ints(text, "attrs")
    if len(values) != 5:
        raise KernelError(f"debugfs attrs holds {len(values)} numbers, expected 5: {text!r}")
    sample, aggr, update, lo, hi = values
    return Intervals(sample_us=sample, aggr_us=aggr, update_us=update), NrRegions(min=lo, max=hi)


def parse_target_ids(text: str) -> tuple[str, list[int]]:
    """``(ops, pids)`` of a read (a lone ``42`` is the paddr target) or of an input (``paddr``)."""
    if text.strip() == "paddr":
        return "paddr", []
    ids = _ints(text, "target_ids")
    if ids == [PADDR_ID]:
        return "paddr", []
    return "vaddr", ids


def parse_schemes(text: str) -> list[tuple[Scheme, SchemeStats]]:
    """Each line of a ``schemes`` read: the scheme and its live statistics."""
    out = []
    for line in text.splitlines():
        values = _ints(line, "schemes")
        if not values:
            continue
        nr_stats = len(values) - _INPUT_FIELDS
        if nr_stats not in _STATS_FIELDS:
            raise KernelError(
                f"debugfs schemes line has {len(values)} numbers, expected "
                f"{' or '.join(str(_INPUT_FIELDS + n) for n in _STATS_FIELDS)}: {line!r}"
            )
        out.append((_scheme(values[:_INPUT_FIELDS]), _stats(values[_INPUT_FIELDS:])))
    return out


def _scheme(v: list[int]) -> Scheme:
    action, metric = v[6], v[13]
    if not 0 <= action < len(ACTIONS) or not 0 <= metric < len(WATERMARK_METRICS):
        raise KernelError(
            f"debugfs schemes line has action {action} / watermark metric {metric}, which kdamon does not know"
        )
    return Scheme(
        action=ACTIONS[action],
        access_pattern=AccessPattern(
            sz_min=v[0], sz_max=v[1], nr_accesses_min=v[2], nr_accesses_max=v[3], age_min=v[4], age_max=v[5]
        ),
        quota=Quota(
            ms=v[7],
            bytes=v[8],
            reset_interval_ms=v[9],
            weights=QuotaWeights(sz_permil=v[10], nr_accesses_permil=v[11], age_permil=v[12]),
        ),
        watermarks=Watermarks(metric=WATERMARK_METRICS[metric], interval_us=v[14], high=v[15], mid=v[16], low=v[17]),
    )


def _stats(v: list[int]) -> SchemeStats:
    if len(v) == 2:  # 5.16 reports only the tried counts: the others are unknown
        return SchemeStats(nr_tried=v[0], sz_tried=v[1], nr_applied=None, sz_applied=None, qt_exceeds=None)
    return SchemeStats(nr_tried=v[0], sz_tried=v[1], nr_applied=v[2], sz_applied=v[3], qt_exceeds=v[4])


def parse_init_regions(text: str, ids: list[int], layout: Layout) -> list[list[Region]]:
    """Per target (in ``target_ids`` order), its initial regions."""
    regions: list[list[Region]] = [[] for _ in ids]
    values = _ints(text, "init_regions")
    for k in range(0, len(values) - 2, 3):
        key, start, end = values[k : k + 3]
        index = key if layout.region_ids_are_indices else ids.index(key) if key in ids else -1
        if not 0 <= index < len(ids):
            raise KernelError(f"debugfs init_regions names target {key}, which target_ids does not have")
        regions[index].append(Region(start, end))
    return regions


def decode_context(
    attrs_text: str, target_ids: str, init_regions: str | None, schemes: str | None, layout: Layout
) -> Context:
    """The context the files hold (``init_regions`` None: targets without their regions)."""
    intervals, nr_regions = parse_attrs(attrs_text)
    ops, pids = parse_target_ids(target_ids)
    ids = [PADDR_ID] if ops == "paddr" else pids
    regions = parse_init_regions(init_regions, ids, layout) if init_regions is not None else [[] for _ in ids]
    owners: list[int | None] = [None] if ops == "paddr" else list(pids)
    return Context(
        ops=ops,
        intervals=intervals,
        nr_regions=nr_regions,
        targets=tuple(Target(pid=pid, regions=tuple(r)) for pid, r in zip(owners, regions, strict=True)),
        schemes=tuple(s for s, _ in parse_schemes(schemes)) if schemes is not None else (),
    )
