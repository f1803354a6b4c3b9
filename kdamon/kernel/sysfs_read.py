"""Read a kdamond directory back into the model, and its results.

Everything here only reads files; nothing writes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from kdamon.errors import ConfigError, KernelError
from kdamon.kernel.sysfs_io import SysfsIO
from kdamon.model import (
    UINT_MAX,
    AccessPattern,
    Context,
    Dest,
    Filter,
    Intervals,
    IntervalsGoal,
    Kdamond,
    NrRegions,
    Quota,
    QuotaGoal,
    QuotaWeights,
    Region,
    Scheme,
    SchemeStats,
    Target,
    TriedRegion,
    Watermarks,
)

__all__ = ["fingerprint", "read_kdamond", "read_scheme_stats", "read_tried_regions"]


class _Reader:
    def __init__(self, io: SysfsIO) -> None:
        self.io = io

    def opt_int(self, path: Path, default: int = 0) -> int:
        return self.io.read_int(path) if self.io.exists(path) else default

    def opt_str(self, path: Path, default: str = "") -> str:
        return self.io.read_str(path) if self.io.exists(path) else default

    def opt_bool(self, path: Path) -> bool:
        return self.io.read_bool(path) if self.io.exists(path) else False

    def count(self, nr_file: Path) -> int:
        return self.opt_int(nr_file)

    def regions(self, path: Path) -> tuple[Region, ...]:
        return tuple(
            Region(self.io.read_int(path / str(i) / "start"), self.io.read_int(path / str(i) / "end"))
            for i in range(self.count(path / "nr_regions"))
        )

    def target(self, path: Path, ops: str) -> Target:
        pid = self.io.read_int(path / "pid_target")
        return Target(
            pid=None if ops == "paddr" else pid,
            regions=self.regions(path / "regions"),
            obsolete=self.opt_bool(path / "obsolete_target"),
        )

    def intervals(self, path: Path) -> Intervals:
        g = path / "intervals_goal"
        goal = IntervalsGoal(
            access_bp=self.opt_int(g / "access_bp"),
            aggrs=self.opt_int(g / "aggrs"),
            min_sample_us=self.opt_int(g / "min_sample_us"),
            max_sample_us=self.opt_int(g / "max_sample_us"),
        )
        return Intervals(
            sample_us=self.io.read_int(path / "sample_us"),
            aggr_us=self.io.read_int(path / "aggr_us"),
            update_us=self.io.read_int(path / "update_us"),
            goal=goal,
        )

    def access_pattern(self, path: Path) -> AccessPattern:
        def rng(name: str, mask: int) -> tuple[int, int]:
            # the kernel keeps nr_accesses and age as unsigned int (truncates)
            low, high = (self.io.read_int(path / name / bound) for bound in ("min", "max"))
            return low & mask, high & mask

        sz = rng("sz", 2**64 - 1)
        acc = rng("nr_accesses", UINT_MAX)
        age = rng("age", UINT_MAX)
        return AccessPattern(sz[0], sz[1], acc[0], acc[1], age[0], age[1])

    def goal(self, path: Path) -> QuotaGoal:
        metric = self.opt_str(path / "target_metric", "user_input")
        return QuotaGoal(
            metric=metric,
            target_value=self.io.read_int(path / "target_value"),
            current_value=self.io.read_int(path / "current_value"),
            nid=self.opt_int(path / "nid"),
            path=self.opt_str(path / "path") if metric.startswith("node_memcg_") else "",
        )

    def quota(self, path: Path) -> Quota:
        w = path / "weights"
        tuner = self.opt_str(path / "goal_tuner", "consist")
        goals = path / "goals"
        return Quota(
            ms=self.io.read_int(path / "ms"),
            bytes=self.io.read_int(path / "bytes"),
            reset_interval_ms=self.io.read_int(path / "reset_interval_ms"),
            weights=QuotaWeights(
                self.io.read_int(w / "sz_permil"),
                self.io.read_int(w / "nr_accesses_permil"),
                self.io.read_int(w / "age_permil"),
            ),
            goals=tuple(self.goal(goals / str(i)) for i in range(self.count(goals / "nr_goals"))),
            goal_tuner=None if tuner == "consist" else tuner,
            fail_charge_num=self.opt_int(path / "fail_charge_num"),
            fail_charge_denom=self.opt_int(path / "fail_charge_denom"),
        )

    def filter(self, path: Path) -> Filter:
        ftype = self.io.read_str(path / "type")
        fields: dict[str, object] = {
            "type": ftype,
            "matching": self.io.read_bool(path / "matching"),
            "allow": self.opt_bool(path / "allow"),
        }
        if ftype == "memcg":
            fields["memcg_path"] = self.io.read_str(path / "memcg_path")
        elif ftype == "addr":
            fields |= {"addr_start": self.io.read_int(path / "addr_start"),
                       "addr_end": self.io.read_int(path / "addr_end")}
        elif ftype == "target":
            fields["target_idx"] = self.io.read_int(path / "damon_target_idx")
        elif ftype == "hugepage_size":
            fields |= {"min": self.io.read_int(path / "min"), "max": self.io.read_int(path / "max")}
        return Filter(**fields)  # type: ignore[arg-type]

    def scheme(self, path: Path) -> Scheme:
        filters: list[Filter] = []
        for dirname in ("core_filters", "ops_filters", "filters"):
            d = path / dirname
            filters += [self.filter(d / str(i)) for i in range(self.count(d / "nr_filters"))]
        dests = path / "dests"
        wm = path / "watermarks"
        return Scheme(
            action=self.io.read_str(path / "action"),
            access_pattern=self.access_pattern(path / "access_pattern"),
            apply_interval_us=self.opt_int(path / "apply_interval_us"),
            target_nid=self.opt_int(path / "target_nid", -1),
            quota=self.quota(path / "quotas"),
            watermarks=Watermarks(
                metric=self.io.read_str(wm / "metric"),
                interval_us=self.io.read_int(wm / "interval_us"),
                high=self.io.read_int(wm / "high"),
                mid=self.io.read_int(wm / "mid"),
                low=self.io.read_int(wm / "low"),
            ),
            filters=tuple(filters),
            dests=tuple(
                Dest(self.io.read_int(dests / str(i) / "id"), self.io.read_int(dests / str(i) / "weight"))
                for i in range(self.count(dests / "nr_dests"))
            ),
            max_nr_snapshots=self.opt_int(path / "stats" / "max_nr_snapshots"),
        )

    def context(self, path: Path) -> Context:
        ops = self.io.read_str(path / "operations")
        attrs_dir = path / "monitoring_attrs"
        targets, schemes = path / "targets", path / "schemes"
        return Context(
            ops=ops,
            addr_unit=self.opt_int(path / "addr_unit", 1),
            pause=self.opt_bool(path / "pause"),
            intervals=self.intervals(attrs_dir / "intervals"),
            nr_regions=NrRegions(
                self.io.read_int(attrs_dir / "nr_regions" / "min"),
                self.io.read_int(attrs_dir / "nr_regions" / "max"),
            ),
            targets=tuple(
                self.target(targets / str(i), ops) for i in range(self.count(targets / "nr_targets"))
            ),
            schemes=tuple(
                self.scheme(schemes / str(i)) for i in range(self.count(schemes / "nr_schemes"))
            ),
        )


def read_kdamond(io: SysfsIO, kdir: Path) -> Kdamond:
    """The configuration staged in ``kdir`` (``kdamonds/<K>``), as the model."""
    reader = _Reader(io)
    contexts = kdir / "contexts"
    try:
        return Kdamond(
            contexts=tuple(
                reader.context(contexts / str(i)) for i in range(reader.count(contexts / "nr_contexts"))
            ),
            refresh_ms=reader.opt_int(kdir / "refresh_ms"),
        )
    except ConfigError as exc:
        raise KernelError(
            f"the configuration staged in {kdir} is not one kdamon can represent ({exc}); "
            "it was probably written by another tool: read its files directly",
            path=str(kdir),
        ) from exc


def read_scheme_stats(io: SysfsIO, scheme_dir: Path) -> SchemeStats:
    """The ``stats/`` files as last copied by the kernel (``update_schemes_stats``)."""
    reader, d = _Reader(io), scheme_dir / "stats"
    optional = {
        name: reader.opt_int(d / name) if io.exists(d / name) else None
        for name in ("sz_ops_filter_passed", "nr_snapshots")
    }
    return SchemeStats(
        nr_tried=io.read_int(d / "nr_tried"),
        sz_tried=io.read_int(d / "sz_tried"),
        nr_applied=io.read_int(d / "nr_applied"),
        sz_applied=io.read_int(d / "sz_applied"),
        qt_exceeds=io.read_int(d / "qt_exceeds"),
        sz_ops_filter_passed=optional["sz_ops_filter_passed"],
        nr_snapshots=optional["nr_snapshots"],
    )


def read_tried_regions(io: SysfsIO, scheme_dir: Path) -> tuple[int, list[TriedRegion]]:
    """``(total_bytes, regions)`` of the last tried-regions update, in address order.

    Region directories are numbered by a counter shared by all schemes up to
    6.13, so they are enumerated and sorted numerically, not assumed 0..N-1.
    """
    d = scheme_dir / "tried_regions"
    regions = []
    for n in io.numeric_subdirs(d):
        r = d / str(n)
        passed = r / "sz_filter_passed"
        regions.append(
            TriedRegion(
                start=io.read_int(r / "start"),
                end=io.read_int(r / "end"),
                nr_accesses=io.read_int(r / "nr_accesses"),
                age=io.read_int(r / "age"),
                sz_filter_passed=io.read_int(passed) if io.exists(passed) else None,
            )
        )
    total_file = d / "total_bytes"
    total = io.read_int(total_file) if io.exists(total_file) else sum(r.end - r.start for r in regions)
    return total, regions


# Files the kernel rewrites by itself (results, tuned intervals, run state):
# not part of the configuration, so not part of its fingerprint.
_VOLATILE = frozenset(
    {"state", "pid", "stats", "tried_regions", "effective_bytes", "sample_us", "aggr_us",
     "avail_operations"}
)


def fingerprint(io: SysfsIO, kdir: Path) -> str:
    """A digest of every configuration file under ``kdir`` (read only)."""
    lines: list[str] = []

    def walk(d: Path, rel: str) -> None:
        for name in sorted(io.listdir(d)):
            if name in _VOLATILE:
                continue
            path = d / name
            if io.is_dir(path):
                walk(path, f"{rel}{name}/")
            else:
                lines.append(f"{rel}{name}={io.read_str(path)}")

    walk(kdir, "")
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()
