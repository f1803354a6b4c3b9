"""The DAMON sysfs driver: apply the model to ``/sys/kernel/mm/damon/admin`` and read it back.

Ownership, allocation, launching with undo and the running-state checks are
the driver core's (``driver_core.py``); this module supplies the sysfs side:
staging (``sysfs_stage``, planned from the schema), reading (``sysfs_read``),
``on``/``off`` and the other state keywords, ``commit``.

Reads (``read``, ``state``, ``pid``, ``scheme_stats``, ``tried_regions``,
``effective_quota``, ``tuned_intervals``, ``features``, ``claim``) never write
anything.  Every mutating entry point first checks ownership (see
``ownership.py``) under the registry's lock: kdamon only touches kdamonds it
created.  State keywords that refresh results (``update_*``) also need
ownership: they take DAMON's global lock and make other users' accesses
fail with EBUSY meanwhile.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import attrs

from kdamon.errors import BusyError, ConfigError, FeatureMissingError, KdamonError, KernelError, OwnershipError
from kdamon.kernel.driver_core import KdamondDriver, Undone
from kdamon.kernel.modules import DamonModules
from kdamon.kernel.ownership import Claim, KdamondView, OwnershipRegistry
from kdamon.kernel.sysfs_features import KEYWORD_EVIDENCE, KEYWORDS, Features, detect_features
from kdamon.kernel.sysfs_io import SysfsIO
from kdamon.kernel.sysfs_read import fingerprint, read_kdamond, read_scheme_stats, read_tried_regions
from kdamon.kernel.sysfs_schema import ON_EINVAL_CAUSES
from kdamon.kernel.sysfs_stage import Journal, stage
from kdamon.model import Kdamond, SchemeStats, TriedRegion

__all__ = ["DEFAULT_ROOT", "SysfsDriver", "with_goals"]

DEFAULT_ROOT = Path("/sys/kernel/mm/damon/admin")


@attrs.define
class _Staging:
    """What undoes a staging of ``kdir``: the configuration before (None: roll the counts back)."""

    io: SysfsIO
    kdir: Path
    before: Kdamond | None
    journal: Journal = attrs.field(factory=Journal)
    fresh: bool = False  # the directory holds no configuration: its counts are 0
    reset: bool = False  # half-written by a killed kdamon: empty it first

    def restore(self, cause: BaseException) -> Undone:
        if self.before is None:
            return Undone.EMPTIED if self.journal.rollback(self.io, cause) else Undone.FAILED
        try:
            stage(self.io, self.kdir, self.before, Journal())
        except KdamonError as exc:
            cause.add_note(f"undo failed: could not restore {self.kdir}'s configuration: {exc}")
            return Undone.FAILED
        return Undone.RESTORED


class SysfsDriver(KdamondDriver[_Staging]):
    """Drives DAMON through its sysfs tree under ``root``."""

    noun = "kdamond"
    running_remedy = "commit the new configuration or stop it first"
    self_stop_note = " (or an invalid commit ended it on a kernel up to 6.14)"

    def __init__(
        self,
        root: Path = DEFAULT_ROOT,
        *,
        io: SysfsIO | None = None,
        owners: OwnershipRegistry | None = None,
        modules: DamonModules | None = None,
    ) -> None:
        self.root = root
        self.io = io if io is not None else SysfsIO()
        super().__init__(owners, modules if modules is not None else DamonModules(io=self.io))

    # -- paths ----------------------------------------------------------
    @property
    def _kdamonds(self) -> Path:
        return self.root / "kdamonds"

    def kdamond_dir(self, index: int) -> Path:
        return self._kdamonds / str(index)

    def _scheme_dir(self, index: int, scheme: int) -> Path:
        return self.kdamond_dir(index) / "contexts" / "0" / "schemes" / str(scheme)

    # -- reads ----------------------------------------------------------
    def available(self) -> bool:
        """Whether this kernel has the DAMON sysfs interface at ``root``."""
        return self.io.exists(self._kdamonds / "nr_kdamonds")

    def features(self) -> Features:
        return detect_features(self.io, self._kdamonds)

    def nr_kdamonds(self) -> int:
        return self.io.read_int(self._kdamonds / "nr_kdamonds")

    def state(self, index: int) -> str:
        return self.io.read_str(self.kdamond_dir(index) / "state")

    def pid(self, index: int) -> int | None:
        """The kdamond's kernel thread pid, None while it is not running."""
        pid = self.io.read_int(self.kdamond_dir(index) / "pid")
        return pid if pid > 0 else None

    def read(self, index: int) -> Kdamond:
        """The configuration staged for kdamond ``index`` (see ``sysfs_plan.canonical``)."""
        return read_kdamond(self.io, self.kdamond_dir(index))

    def scheme_stats(self, index: int) -> list[SchemeStats]:
        """Each scheme's counters as last copied by ``update_schemes_stats``."""
        schemes = self.kdamond_dir(index) / "contexts" / "0" / "schemes"
        if not self.io.exists(schemes):
            return []
        count = self.io.read_int(schemes / "nr_schemes")
        return [read_scheme_stats(self.io, schemes / str(i)) for i in range(count)]

    def tried_regions(self, index: int, scheme: int) -> tuple[int, list[TriedRegion]]:
        """``(total_bytes, regions)`` from the last ``update_tried_regions``/``update_tried_bytes``."""
        scheme_dir = self._scheme_dir(index, scheme)
        if self.io.exists(scheme_dir):
            self._require_file(scheme_dir / "tried_regions", "tried regions", "6.2")
        return read_tried_regions(self.io, scheme_dir)

    def effective_quota(self, index: int, scheme: int) -> int:
        """``quotas/effective_bytes`` as last copied by ``update_effective_quotas`` (6.9+)."""
        path = self._scheme_dir(index, scheme) / "quotas" / "effective_bytes"
        self._require_file(path, "effective quotas", "6.9")
        return self.io.read_int(path)

    def tuned_intervals(self, index: int) -> tuple[int, int]:
        """``(sample_us, aggr_us)`` as last copied by ``update_tuned_intervals`` or ``refresh_ms``."""
        d = self.kdamond_dir(index) / "contexts" / "0" / "monitoring_attrs" / "intervals"
        return self.io.read_int(d / "sample_us"), self.io.read_int(d / "aggr_us")

    def _require_file(self, path: Path, what: str, since: str) -> None:
        if not self.io.exists(path):
            raise FeatureMissingError(
                f"{what} need {path}, which this kernel lacks (Linux {since}+); use a newer kernel",
                path=str(path),
            )

    def _require_keyword(self, keyword: str) -> None:
        """Refuse a state keyword that the kernel's files show it does not know."""
        if keyword not in KEYWORD_EVIDENCE:
            return
        feats = self.features()
        if feats.knows(keyword) is False:
            lacking = [entry for kind, entry in KEYWORD_EVIDENCE[keyword] if feats.has(kind, entry) is False]
            raise FeatureMissingError(
                f"'{keyword}' needs DAMON sysfs of Linux {dict(KEYWORDS)[keyword]}+, and this kernel "
                f"lacks its {', '.join(lacking)} files, so it does not know the keyword; use a newer kernel",
                path=str(self._kdamonds),
            )

    def avail_operations(self) -> tuple[str, ...] | None:
        """The operations sets the kernel offers, as an existing kdamond directory lists them
        (None without one: kdamon never creates a directory only to look)."""
        if not self.io.is_dir(self._kdamonds):
            return None
        for index in self.io.numeric_subdirs(self._kdamonds):
            path = self.kdamond_dir(index) / "contexts" / "0" / "avail_operations"
            if self.io.exists(path):
                return tuple(self.io.read_str(path).split())
        return None

    def unwritable(self) -> Path | None:
        """The file kdamon would need to write and may not (not root), None if it may."""
        path = self._kdamonds / "nr_kdamonds"
        return None if os.access(path, os.W_OK) else path

    def _configured(self, index: int) -> bool:
        """``nr_contexts`` > 0: read without DAMON's lock (``state`` and ``pid`` take it)."""
        return self.io.read_int(self.kdamond_dir(index) / "contexts" / "nr_contexts") > 0

    # -- the driver core's hooks ------------------------------------------
    def _key(self, index: int) -> tuple[Path, int]:
        return self.root, index

    def _label(self, index: int) -> str:
        return f"kdamond {index}"

    def _where(self) -> Path:
        return self._kdamonds

    def _observe(self, index: int) -> KdamondView:
        return KdamondView(
            index=index,
            running=self.state(index) == "on",
            pid=self.pid(index),
            configured=self._configured(index),
            fingerprint=lambda: self._fingerprint(index),
        )

    def _fingerprint(self, index: int) -> str:
        return fingerprint(self.io, self.kdamond_dir(index))

    def _running_pid(self, index: int) -> int | None:
        pid = self.pid(index)
        return pid if pid is not None and self.state(index) == "on" else None

    def _quick_refusal(self, nr: int) -> str | None:
        # A configured directory kdamon has no record of is another tool's, running or not, so its
        # `state` and `pid` (which take DAMON's global lock and can make that tool's own sysfs
        # writes fail with EBUSY meanwhile) need not be read.
        foreign = [i for i in range(nr) if self.record_of(i) is None and self._configured(i)]
        if nr and len(foreign) == nr:
            return (
                f"kdamond {foreign[0]} holds another tool's configuration, and a new kdamond directory "
                "means rewriting nr_kdamonds, which would wipe it (and which the kernel refuses while "
                "any kdamond runs)"
            )
        return None

    def _creation_refusal(self, views: list[KdamondView], claims: list[Claim]) -> str | None:
        if not views:
            return None  # the first kdamond directory: nothing to disturb
        running = [i for i, view in enumerate(views) if view.running]
        index = running[0] if running else 0  # a running kdamond explains it best
        view = views[index]
        whose = "kdamon's own" if claims[index] is Claim.OWNED else "another tool's"
        if view.running:
            return (
                f"kdamond {view.index} ({whose}, pid {view.pid}) is running, and a new kdamond "
                "directory means rewriting nr_kdamonds, which the kernel refuses while any "
                "kdamond runs"
            )
        return f"kdamond {view.index} holds {whose} stopped configuration, which a new kdamond directory would wipe"

    def _check_growth(self, nr: int, views: list[KdamondView]) -> None:
        """Refuse to rewrite nr_kdamonds unless every existing dir is owned-and-stopped or free."""
        for i, view in enumerate(views):
            claim = self.claim(i, view)
            why = (
                f"creating kdamond directory {nr} means rewriting nr_kdamonds, which the kernel "
                f"refuses while any kdamond runs and which would wipe every kdamond directory"
            )
            if view.running and claim is Claim.OWNED:
                raise BusyError(
                    f"{why}; kdamon's own kdamond {i} (pid {view.pid}) is running: stop it first "
                    "(or commit the new configuration to it)",
                    path=str(self._kdamonds / "nr_kdamonds"),
                    errno=errno.EBUSY,
                )
            if view.running:
                raise OwnershipError(
                    f"{why}; kdamond {i} (pid {view.pid}) is running and kdamon did not start it, "
                    "so kdamon will not stop it. Wait until its owner stops it"
                )
            if claim is Claim.FOREIGN:
                raise OwnershipError(
                    f"{why}; kdamond {i} is stopped but holds a configuration kdamon did not "
                    "create, which would be lost. Ask its owner to remove it (nr_kdamonds) first"
                )

    def _create(self, nr: int, views: list[KdamondView] | None) -> tuple[int, _Staging]:
        """Create kdamond directory ``nr``: rewriting nr_kdamonds empties directories 0..nr-1."""
        self._check_growth(nr, views if views is not None else [self.view(i) for i in range(nr)])
        staging = _Staging(self.io, self.kdamond_dir(nr), None, fresh=True)
        recorded = [i for i in range(nr) if self.record_of(i) is not None]
        for i in recorded:
            self._intend(i, None)  # emptied below: kdamon's until forgotten
        try:
            staging.journal.write_count(self.io, self._kdamonds / "nr_kdamonds", nr, nr + 1)
        except BaseException:
            for i in recorded:
                self._record(i, None)  # the refused write left them as they were
            raise
        for i in range(nr):
            self.owners.forget(self.root, i)
        return nr, staging

    def _keep(self, index: int, view: KdamondView, interrupted: bool) -> _Staging:
        before = self.read(index) if view.configured and not interrupted else None
        return _Staging(
            self.io,
            self.kdamond_dir(index),
            before,
            fresh=not view.configured or interrupted,
            reset=view.configured and interrupted,
        )

    def _write(self, index: int, kdamond: Kdamond, staging: _Staging) -> None:
        if staging.reset:  # half-written by a killed kdamon: start afresh
            self.io.write(self.kdamond_dir(index) / "contexts" / "nr_contexts", 0)
        stage(self.io, self.kdamond_dir(index), kdamond, staging.journal, fresh=staging.fresh)

    def _write_state(self, index: int, keyword: str) -> None:
        self.io.write(self.kdamond_dir(index) / "state", keyword)

    def _start(self, index: int) -> list[int]:
        try:
            self._write_state(index, "on")
        except BusyError as exc:
            reason = self.modules.busy_reason()
            if reason is not None:
                raise reason from exc
            raise BusyError(
                f"starting kdamond {index} stayed EBUSY: another DAMON user holds DAMON "
                "exclusively (the legacy debugfs interface on kernels up to 6.13, or a DAMON "
                "module not visible under /sys/module), or DAMON's sysfs lock stayed busy. "
                "Stop that user, then retry",
                path=exc.path,
                errno=errno.EBUSY,
            ) from exc
        return []

    def _stop(self, index: int, views: list[KdamondView]) -> bool:
        try:
            self._write_state(index, "off")
        except KernelError as exc:
            if exc.errno != errno.EPERM:  # EPERM: it exited meanwhile
                raise
            return False
        return True

    def _unconfigure(self, index: int, view: KdamondView) -> None:
        if view.configured:
            self.io.write(self.kdamond_dir(index) / "contexts" / "nr_contexts", 0)

    # -- online changes and state keywords ------------------------------------
    def _stage_running(self, index: int, kdamond: Kdamond, keyword: str) -> KdamondView:
        """Stage ``kdamond`` into running kdamond ``index`` and write ``keyword``; undo on failure."""
        view = self._require_running(index, keyword)
        self._require_keyword(keyword)
        staging = _Staging(self.io, self.kdamond_dir(index), self.read(index))
        self._intend(index, view.pid)
        try:
            stage(self.io, self.kdamond_dir(index), kdamond, staging.journal)
            self._write_state(index, keyword)
        except BaseException as exc:
            self._undo(index, staging, exc, view.pid)
            raise
        self._record(index, view.pid)
        return view

    def commit(self, index: int, kdamond: Kdamond) -> None:
        """Stage ``kdamond`` into running kdamond ``index`` and write ``commit``."""
        with self.owners.locked():
            view = self._stage_running(index, kdamond, "commit")
            if self.state(index) != "on":
                raise KernelError(
                    f"the kernel accepted 'commit' but kdamond {index} (pid {view.pid}) stopped: "
                    "kernels up to 6.14 end the kdamond instead of rejecting an invalid commit. "
                    f"Likely causes: {'; '.join(ON_EINVAL_CAUSES)}",
                    path=str(self.kdamond_dir(index) / "state"),
                )

    def _command(self, index: int, keyword: str) -> None:
        with self.owners.locked():
            self._require_owned(index)
            self._require_keyword(keyword)
            self._write_state(index, keyword)

    def commit_quota_goals(self, index: int) -> None:
        """``commit_schemes_quota_goals``: re-read only the quota goals (6.8+)."""
        self._command(index, "commit_schemes_quota_goals")

    def commit_goals(self, index: int, kdamond: Kdamond) -> None:
        """Give running kdamond ``index`` the schemes' quota goals of ``kdamond`` and nothing else
        (``commit_schemes_quota_goals``, 6.8+): its monitoring and regions go on undisturbed."""
        with self.owners.locked():
            self._stage_running(index, with_goals(self.read(index), kdamond), "commit_schemes_quota_goals")

    def update_schemes_stats(self, index: int) -> None:
        self._command(index, "update_schemes_stats")

    def update_tried_bytes(self, index: int) -> None:
        """``update_schemes_tried_bytes`` (6.6+): only ``total_bytes``."""
        self._command(index, "update_schemes_tried_bytes")

    def update_tried_regions(self, index: int) -> None:
        """``update_schemes_tried_regions``: blocks for one apply interval per scheme."""
        self._command(index, "update_schemes_tried_regions")

    def clear_tried_regions(self, index: int) -> None:
        self._command(index, "clear_schemes_tried_regions")

    def update_effective_quotas(self, index: int) -> None:
        """``update_schemes_effective_quotas`` (6.9+)."""
        self._command(index, "update_schemes_effective_quotas")

    def update_tuned_intervals(self, index: int) -> None:
        """``update_tuned_intervals`` (6.15+)."""
        self._command(index, "update_tuned_intervals")

    def set_refresh_ms(self, index: int, refresh_ms: int) -> None:
        """Let the kdamond refresh stats and tuned intervals itself every ``refresh_ms`` (6.17+)."""
        path = self.kdamond_dir(index) / "refresh_ms"
        with self.owners.locked():
            view = self._require_owned(index)
            self._require_file(path, "periodic refreshes", "6.17")
            self._intend(index, view.pid)
            self.io.write(path, refresh_ms)
            self._record(index, view.pid)


def with_goals(running: Kdamond, wanted: Kdamond) -> Kdamond:
    """``running`` with each scheme's quota goals (and goal tuner) taken from ``wanted``."""
    import attrs

    have = running.contexts[0].schemes if running.contexts else ()
    new = wanted.contexts[0].schemes if wanted.contexts else ()
    if len(have) != len(new):
        raise ConfigError(
            "schemes",
            f"the kdamond runs {len(have)} schemes and {len(new)} were given: "
            "goals-only commits keep the schemes, give one per running scheme",
        )
    schemes = tuple(
        attrs.evolve(old, quota=attrs.evolve(old.quota, goals=fresh.quota.goals, goal_tuner=fresh.quota.goal_tuner))
        for old, fresh in zip(have, new, strict=True)
    )
    return attrs.evolve(running, contexts=(attrs.evolve(running.contexts[0], schemes=schemes), *running.contexts[1:]))
