"""An in-process emulation of the kernel's DAMON sysfs interface for host tests.

``FakeDamonFs`` implements ``kdamon.kernel.sysfs_io.RawFs`` over real files in
a temporary directory (so tests can look at the tree with ordinary file
operations) and reacts to writes the way the kernel does: ``nr_*`` writes
rebuild every child directory with defaults (even with the same value),
values are parsed like ``kstrto*`` (base 0), keyword files reject unknown
keywords, ``state`` validates at ``on``/``commit`` with the 6.12 errno map,
and locked files can be made to fail with EBUSY.  ``version`` "6.12" or
"7.3" picks the file set (7.3 as damon-abi.md §1.2 lists it, data-attribute
probes included) and the commit behaviour (6.12: a bad commit returns
success and kills the kdamond; 7.3: EINVAL).

Every write is logged in ``writes`` as ``(relative path, text)``.
"""

from __future__ import annotations

import errno
import shutil
from collections.abc import Callable
from pathlib import Path

from kdamon.kernel.modules import DamonModules
from kdamon.kernel.ownership import OwnershipRegistry
from kdamon.kernel.sysfs import SysfsDriver
from kdamon.kernel.sysfs_io import SysfsIO

OPS = ("vaddr", "fvaddr", "paddr")
ACTIONS = (
    "willneed",
    "cold",
    "pageout",
    "hugepage",
    "nohugepage",
    "lru_prio",
    "lru_deprio",
    "migrate_hot",
    "migrate_cold",
    "collapse",
    "stat",
)
KEYWORDS = {
    "operations": OPS,
    "action": ACTIONS,
    "metric": ("none", "free_mem_rate"),
    "type": ("anon", "memcg", "young", "addr", "target", "hugepage_size", "active", "unmapped"),
    "target_metric": (
        "user_input",
        "some_mem_psi_us",
        "node_mem_used_bp",
        "node_mem_free_bp",
        "node_memcg_used_bp",
        "node_memcg_free_bp",
        "active_mem_bp",
        "inactive_mem_bp",
        "node_eligible_mem_bp",
    ),
    "goal_tuner": ("consist", "temporal"),
}
BOOLS = {"matching", "allow", "obsolete_target", "pause"}
STRINGS = {"memcg_path", "path"}
READ_ONLY = {
    "pid",
    "avail_operations",
    "effective_bytes",
    "nr_tried",
    "sz_tried",
    "nr_applied",
    "sz_applied",
    "qt_exceeds",
    "sz_ops_filter_passed",
    "nr_snapshots",
    "total_bytes",
    "hits",
    "sz_filter_passed",
}
STATE_KEYWORDS_612 = (
    "on",
    "off",
    "commit",
    "update_schemes_stats",
    "update_schemes_tried_regions",
    "clear_schemes_tried_regions",
    "update_schemes_tried_bytes",
    "commit_schemes_quota_goals",
    "update_schemes_effective_quotas",
)


def oserr(code: int, path: Path) -> OSError:
    return OSError(code, errno.errorcode[code], str(path))


class TreeQueries:
    """What every fake shares: lookups straight on the tree, no mkdir or rmdir (sysfs refuses them)."""

    def exists(self, path: Path) -> bool:
        return path.exists()

    def is_dir(self, path: Path) -> bool:
        return path.is_dir()

    def listdir(self, path: Path) -> list[str]:
        return [p.name for p in path.iterdir()]

    def mkdir(self, path: Path) -> None:
        raise oserr(errno.EPERM, path)

    def rmdir(self, path: Path) -> None:
        raise oserr(errno.EPERM, path)


class FakeDamonFs(TreeQueries):
    """The kernel's DAMON sysfs tree, emulated under ``base`` (see module docstring)."""

    def __init__(self, base: Path, version: str = "6.12", *, attach: bool = False) -> None:
        """A new tree under ``base``; ``attach=True`` takes over the tree another
        ``FakeDamonFs`` left there (in another process), running kdamonds included."""
        self.base = base
        self.new = version != "6.12"
        self.writes: list[tuple[str, str]] = []
        self.faults: dict[str, list[int]] = {}  # relative path -> errnos for the next writes
        self.live_pids: set[int] = {4242}
        self.exclusive_users: set[str] = set()  # e.g. {"damon_stat"}: 'on' -> EBUSY
        self.tried: dict[int, list[tuple[int, int, int, int]]] = {}  # scheme -> regions
        self.stats: dict[int, tuple[int, int, int, int, int]] = {}  # scheme -> counters
        self._next_pid = 90000
        self._contexts: dict[int, str] = {}  # kdamond index -> "running" | "exited" | "stopped"
        if attach:
            for kdir in (base / "kdamonds").iterdir():
                if kdir.name.isdigit():
                    pid = self._int(kdir / "pid")
                    self._contexts[int(kdir.name)] = "running" if pid > 0 else "stopped"
                    self._next_pid = max(self._next_pid, pid)
            return
        base.mkdir(parents=True, exist_ok=True)
        self._dir(base / "kdamonds", {"nr_kdamonds": "0"})

    # -- tree building ---------------------------------------------------
    def _dir(self, d: Path, files: dict[str, str]) -> None:
        d.mkdir(parents=True, exist_ok=True)
        for name, value in files.items():
            (d / name).write_text(value + "\n")

    def _kdamond(self, d: Path) -> None:
        self._dir(d, {"state": "off", "pid": "-1"} | ({"refresh_ms": "0"} if self.new else {}))
        self._dir(d / "contexts", {"nr_contexts": "0"})

    def _context(self, d: Path) -> None:
        extra = {"addr_unit": "1", "pause": "N"} if self.new else {}
        self._dir(d, {"avail_operations": "vaddr\nfvaddr\npaddr", "operations": "vaddr"} | extra)
        iv = d / "monitoring_attrs" / "intervals"
        self._dir(iv, {"sample_us": "5000", "aggr_us": "100000", "update_us": "60000000"})
        if self.new:
            self._dir(
                iv / "intervals_goal", dict.fromkeys(("access_bp", "aggrs", "min_sample_us", "max_sample_us"), "0")
            )
        self._dir(d / "monitoring_attrs" / "nr_regions", {"min": "10", "max": "1000"})
        if self.new:
            self._dir(d / "monitoring_attrs" / "probes", {"nr_probes": "0"})
        self._dir(d / "targets", {"nr_targets": "0"})
        self._dir(d / "schemes", {"nr_schemes": "0"})

    def _target(self, d: Path) -> None:
        self._dir(d, {"pid_target": "0"} | ({"obsolete_target": "N"} if self.new else {}))
        self._dir(d / "regions", {"nr_regions": "0"})

    def _scheme(self, d: Path) -> None:
        self._dir(d, {"action": "stat", "apply_interval_us": "0", "target_nid": "-1"})
        for name in ("sz", "nr_accesses", "age"):
            self._dir(d / "access_pattern" / name, {"min": "0", "max": "0"})
        q = {"ms": "0", "bytes": "0", "reset_interval_ms": "0", "effective_bytes": "0"}
        if self.new:
            q |= {"goal_tuner": "consist", "fail_charge_num": "0", "fail_charge_denom": "0"}
        self._dir(d / "quotas", q)
        self._dir(d / "quotas" / "weights", dict.fromkeys(("sz_permil", "nr_accesses_permil", "age_permil"), "0"))
        self._dir(d / "quotas" / "goals", {"nr_goals": "0"})
        self._dir(d / "watermarks", {"metric": "none", "interval_us": "0", "high": "0", "mid": "0", "low": "0"})
        for fdir in ("filters", "core_filters", "ops_filters") if self.new else ("filters",):
            self._dir(d / fdir, {"nr_filters": "0"})
        if self.new:
            self._dir(d / "dests", {"nr_dests": "0"})
        stats = dict.fromkeys(("nr_tried", "sz_tried", "nr_applied", "sz_applied", "qt_exceeds"), "0")
        if self.new:
            stats |= {"sz_ops_filter_passed": "0", "nr_snapshots": "0", "max_nr_snapshots": "0"}
        self._dir(d / "stats", stats)
        self._dir(d / "tried_regions", {"total_bytes": "0"})

    def _goal(self, d: Path) -> None:
        g = {"target_metric": "user_input", "target_value": "0", "current_value": "0"}
        self._dir(d, g | ({"nid": "0", "path": ""} if self.new else {}))

    def _filter(self, d: Path) -> None:
        f = {
            "type": "anon",
            "matching": "N",
            "memcg_path": "",
            "addr_start": "0",
            "addr_end": "0",
            "damon_target_idx": "0",
        }
        self._dir(d, f | ({"allow": "N", "min": "0", "max": "0"} if self.new else {}))

    def _probe(self, d: Path) -> None:
        self._dir(d, {"weight": "0"})
        self._dir(d / "filters", {"nr_filters": "0"})

    def _children(self, nr_file: Path) -> Callable[[Path], None] | None:
        if nr_file.name == "nr_filters" and nr_file.parent.parent.parent.name == "probes":
            return lambda d: self._dir(d, {"type": "anon", "matching": "N", "allow": "N", "path": ""})
        return {
            "nr_kdamonds": self._kdamond,
            "nr_contexts": self._context,
            "nr_targets": self._target,
            "nr_schemes": self._scheme,
            "nr_goals": self._goal,
            "nr_filters": self._filter,
            "nr_probes": self._probe,
            "nr_dests": lambda d: self._dir(d, {"id": "0", "weight": "0"}),
            "nr_regions": lambda d: self._dir(d, {"start": "0", "end": "0"}),
        }.get(nr_file.name)

    # -- RawFs -------------------------------------------------------------
    def rel(self, path: Path) -> str:
        return str(path.relative_to(self.base))

    def read(self, path: Path) -> str:
        if not path.exists():
            raise oserr(errno.ENOENT, path)
        return path.read_text()

    def write(self, path: Path, data: bytes) -> None:
        text = data.decode()
        rel = self.rel(path)
        self.writes.append((rel, text))
        pending = self.faults.get(rel)
        if pending:
            raise oserr(pending.pop(0), path)
        if not path.is_file():
            raise oserr(errno.ENOENT, path)
        name = path.name
        value = text[:-1] if text.endswith("\n") else text
        if name in READ_ONLY or (name == "state" and path.parent.parent.name != "kdamonds"):
            raise oserr(errno.EACCES, path)
        if name == "state":
            self._state(path.parent, value)
        elif name in KEYWORDS:
            if value not in KEYWORDS[name]:
                raise oserr(errno.EINVAL, path)
            path.write_text(value + "\n")
        elif name in BOOLS:
            if value not in ("Y", "y", "1", "N", "n", "0", "on", "off"):
                raise oserr(errno.EINVAL, path)
            path.write_text(("Y" if value in ("Y", "y", "1", "on") else "N") + "\n")
        elif name in STRINGS:
            path.write_text(value + "\n")
        else:
            try:
                number = int(value, 0)
            except ValueError:
                raise oserr(errno.EINVAL, path) from None
            signed = name in ("target_nid", "pid_target")
            if (number < 0 and not signed) or number >= 2**64:
                raise oserr(errno.EINVAL, path)
            self._number(path, number)

    def _number(self, path: Path, number: int) -> None:
        build = self._children(path)
        if build is None:
            path.write_text(f"{number}\n")
            return
        if path.name == "nr_kdamonds" and any(s == "running" for s in self._contexts.values()):
            raise oserr(errno.EBUSY, path)
        if path.name == "nr_contexts" and number > 1:
            raise oserr(errno.EINVAL, path)
        for child in path.parent.iterdir():
            if child.name.isdigit():
                shutil.rmtree(child)
        if path.name == "nr_kdamonds":
            self._contexts.clear()
        for i in range(number):
            build(path.parent / str(i))
        path.write_text(f"{number}\n")

    # -- state -------------------------------------------------------------
    def _int(self, path: Path) -> int:
        return int(path.read_text())

    def _valid(self, kdir: Path) -> bool:
        if self._int(kdir / "contexts" / "nr_contexts") != 1:
            return False
        ctx = kdir / "contexts" / "0"
        ops = (ctx / "operations").read_text().strip()
        iv = ctx / "monitoring_attrs" / "intervals"
        nr = ctx / "monitoring_attrs" / "nr_regions"
        lo, hi = self._int(nr / "min"), self._int(nr / "max")
        if lo < 3 or lo > hi or self._int(iv / "sample_us") > self._int(iv / "aggr_us"):
            return False
        nr_targets = self._int(ctx / "targets" / "nr_targets")
        if ops == "paddr" and nr_targets > 1:
            return False
        for t in range(nr_targets):
            td = ctx / "targets" / str(t)
            if ops != "paddr" and self._int(td / "pid_target") not in self.live_pids:
                return False
            last_end = 0
            for r in range(self._int(td / "regions" / "nr_regions")):
                start, end = self._int(td / "regions" / str(r) / "start"), self._int(td / "regions" / str(r) / "end")
                if start >= end or start < last_end:
                    return False
                last_end = end
        return True

    def _state(self, kdir: Path, keyword: str) -> None:
        state_file, index = kdir / "state", int(kdir.name)
        status = self._contexts.get(index)
        if keyword == "off":
            if status is None:
                raise oserr(errno.EINVAL, state_file)
            if status == "exited":
                raise oserr(errno.EPERM, state_file)
            self._set(kdir, "stopped")
            return
        known = STATE_KEYWORDS_612 + (("update_tuned_intervals",) if self.new else ())
        if keyword not in known or self._int(kdir / "contexts" / "nr_contexts") != 1:
            raise oserr(errno.EINVAL, state_file)
        if keyword == "on":
            if status == "running" or self.exclusive_users:
                raise oserr(errno.EBUSY, state_file)
            if not self._valid(kdir):
                raise oserr(errno.EINVAL, state_file)
            self._set(kdir, "running")
            return
        if status != "running":
            raise oserr(errno.EINVAL, state_file)
        if keyword == "commit" and not self._valid(kdir):
            if self.new:
                raise oserr(errno.EINVAL, state_file)
            self._set(kdir, "exited")  # 6.12: success, but the kdamond dies
        elif keyword == "update_schemes_stats":
            self._fill_stats(kdir)
        elif keyword in ("update_schemes_tried_regions", "update_schemes_tried_bytes", "clear_schemes_tried_regions"):
            self._fill_tried(
                kdir,
                dirs=keyword.endswith("regions") and keyword.startswith("update"),
                clear=keyword.startswith("clear"),
            )

    def _set(self, kdir: Path, status: str) -> None:
        self._contexts[int(kdir.name)] = status
        running = status == "running"
        if running:
            self._next_pid += 1
        (kdir / "state").write_text("on\n" if running else "off\n")
        (kdir / "pid").write_text(f"{self._next_pid if running else -1}\n")

    def kill_targets(self, index: int) -> None:
        """All target processes of kdamond ``index`` exit: the kdamond stops by itself."""
        self._set(self.base / "kdamonds" / str(index), "exited")

    def _schemes(self, kdir: Path) -> list[Path]:
        sdir = kdir / "contexts" / "0" / "schemes"
        return [sdir / str(i) for i in range(self._int(sdir / "nr_schemes"))]

    def _fill_stats(self, kdir: Path) -> None:
        names = ("nr_tried", "sz_tried", "nr_applied", "sz_applied", "qt_exceeds")
        for i, sdir in enumerate(self._schemes(kdir)):
            for name, value in zip(names, self.stats.get(i, (0, 0, 0, 0, 0)), strict=True):
                (sdir / "stats" / name).write_text(f"{value}\n")

    def _fill_tried(self, kdir: Path, *, dirs: bool, clear: bool) -> None:
        schemes = self._schemes(kdir)
        for i, sdir in enumerate(schemes):
            for child in (sdir / "tried_regions").iterdir():
                if child.name.isdigit():
                    shutil.rmtree(child)
            total = 0 if clear else sum(end - start for start, end, _, _ in self.tried.get(i, []))
            (sdir / "tried_regions" / "total_bytes").write_text(f"{total}\n")
        if not dirs:
            return
        # Up to 6.13 one counter numbers the regions of all schemes: interleaved.
        counter, longest = 0, max((len(v) for v in self.tried.values()), default=0)
        for j in range(longest):
            for i, sdir in enumerate(schemes):
                if j < len(self.tried.get(i, [])):
                    start, end, acc, age = self.tried[i][j]
                    files = {"start": str(start), "end": str(end), "nr_accesses": str(acc), "age": str(age)}
                    region = sdir / "tried_regions" / str(counter if not self.new else j)
                    self._dir(region, files | ({"sz_filter_passed": "0"} if self.new else {}))
                    if self.new:
                        self._dir(region / "probes", {})
                    counter += 1


def make_driver(tmp_path: Path, version: str) -> tuple[SysfsDriver, FakeDamonFs]:
    fake = FakeDamonFs(tmp_path / "admin", version)
    io = SysfsIO(fake, sleep=lambda _s: None)
    driver = SysfsDriver(
        tmp_path / "admin",
        io=io,
        owners=OwnershipRegistry(tmp_path / "run"),
        modules=DamonModules(tmp_path / "module", io=io),
    )
    return driver, fake
