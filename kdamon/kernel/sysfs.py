"""The DAMON sysfs driver: apply the model to ``/sys/kernel/mm/damon/admin`` and read it back.

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
from pathlib import Path

from kdamon.errors import BusyError, ConfigError, FeatureMissingError, KdamonError, KernelError, OwnershipError
from kdamon.kernel.modules import DamonModules
from kdamon.kernel.ownership import Claim, KdamondView, OwnershipRegistry, classify
from kdamon.kernel.sysfs_errors import ON_EINVAL_CAUSES
from kdamon.kernel.sysfs_features import KEYWORD_EVIDENCE, KEYWORDS, Features, detect_features
from kdamon.kernel.sysfs_io import SysfsIO
from kdamon.kernel.sysfs_read import fingerprint, read_kdamond, read_scheme_stats, read_tried_regions
from kdamon.kernel.sysfs_stage import Journal, stage
from kdamon.model import Kdamond, SchemeStats, TriedRegion

__all__ = ["DEFAULT_ROOT", "SysfsDriver", "with_goals"]

DEFAULT_ROOT = Path("/sys/kernel/mm/damon/admin")


class SysfsDriver:
    """Drives DAMON through its sysfs tree under ``root``."""

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
        self.owners = owners if owners is not None else OwnershipRegistry()
        self.modules = modules if modules is not None else DamonModules(io=self.io)

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

    def view(self, index: int) -> KdamondView:
        kdir = self.kdamond_dir(index)
        pid = self.pid(index)
        return KdamondView(
            index=index,
            running=self.state(index) == "on",
            pid=pid,
            configured=self.io.read_int(kdir / "contexts" / "nr_contexts") > 0,
            fingerprint=lambda: fingerprint(self.io, kdir),
        )

    def claim(self, index: int) -> Claim:
        """Whether kdamon owns kdamond ``index``, it is free, or it is someone else's."""
        return classify(self.view(index), self.owners.get(self.root, index))

    def interrupted(self, index: int) -> bool:
        """Whether a kdamon process died while writing kdamond ``index`` (its record is pending)."""
        record = self.owners.get(self.root, index)
        return record is not None and record.pending

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

    # -- ownership ------------------------------------------------------
    def _require_owned(self, index: int) -> KdamondView:
        if index >= self.nr_kdamonds():
            raise KernelError(f"there is no kdamond {index} under {self._kdamonds}; check the index")
        view = self.view(index)
        if classify(view, self.owners.get(self.root, index)) is not Claim.OWNED:
            raise OwnershipError(
                f"kdamond {index} under {self._kdamonds} (state {'on' if view.running else 'off'}, "
                f"pid {view.pid if view.pid else 'none'}) was not created by kdamon, or was "
                "re-staged by another tool since; kdamon never modifies, stops or commands a "
                "kdamond it did not create. Use the tool that created it"
            )
        return view

    def _check_growth(self, nr: int) -> None:
        """Refuse to rewrite nr_kdamonds unless every existing dir is owned-and-stopped or free."""
        for i in range(nr):
            view = self.view(i)
            claim = classify(view, self.owners.get(self.root, i))
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

    def allocate(self) -> int:
        """An index to ``apply`` to: a stopped owned or free directory, else a new one."""
        nr = self.nr_kdamonds()
        for i in range(nr):
            view = self.view(i)
            if not view.running and classify(view, self.owners.get(self.root, i)) is not Claim.FOREIGN:
                return i
        return nr

    # -- staging --------------------------------------------------------
    # Every write to a kdamond directory comes after an intent record (a pending
    # one) and before the final record: see "Crash consistency" in ownership.py.
    def _record(self, index: int, pid: int | None) -> None:
        self.owners.record(self.root, index, pid, fingerprint(self.io, self.kdamond_dir(index)))

    def _intend(self, index: int, pid: int | None) -> None:
        self.owners.intend(self.root, index, pid)

    def _grow(self, nr: int, journal: Journal) -> None:
        """Create kdamond directory ``nr``: rewriting nr_kdamonds empties directories 0..nr-1."""
        self._check_growth(nr)
        recorded = [i for i in range(nr) if self.owners.get(self.root, i) is not None]
        for i in recorded:
            self._intend(i, None)  # emptied below: kdamon's until forgotten
        try:
            journal.write_count(self.io, self._kdamonds / "nr_kdamonds", nr, nr + 1)
        except BaseException:
            for i in recorded:
                self._record(i, None)  # the refused write left them as they were
            raise
        for i in range(nr):
            self.owners.forget(self.root, i)

    def _prepare(self, index: int, journal: Journal) -> Kdamond | None:
        """Check that ``index`` may be (re)staged, creating it if needed, and record the intent.

        Returns the configuration to restore on undo (None: roll the counts back).
        """
        nr = self.nr_kdamonds()
        if index > nr:
            raise KernelError(f"kdamond index {index} is beyond nr_kdamonds ({nr}); use {nr} or allocate()")
        if index == nr:
            self._grow(nr, journal)
            self._intend(index, None)
            return None
        view = self.view(index)
        if classify(view, self.owners.get(self.root, index)) is Claim.FOREIGN:
            self._require_owned(index)  # raises the OwnershipError
        if view.running:
            raise BusyError(
                f"kdamond {index} is running: commit the new configuration or stop it first",
                path=str(self.kdamond_dir(index) / "state"),
                errno=errno.EBUSY,
            )
        interrupted = self.interrupted(index)
        before = self.read(index) if view.configured and not interrupted else None
        self._intend(index, None)
        if view.configured and interrupted:  # half-written by a killed kdamon: start afresh
            self.io.write(self.kdamond_dir(index) / "contexts" / "nr_contexts", 0)
        return before

    def _undo(self, index: int, before: Kdamond | None, journal: Journal, cause: BaseException,
              pid: int | None = None) -> None:
        """Put directory ``index`` back as ``before`` (None: roll the counts back) with its record.

        A directory that could not be restored keeps a pending record: it stays kdamon's.
        """
        self._intend(index, pid)
        if before is None:
            if journal.rollback(self.io, cause):
                self.owners.forget(self.root, index)
            return
        try:
            stage(self.io, self.kdamond_dir(index), before, Journal())
        except KdamonError as exc:
            cause.add_note(f"undo failed: could not restore kdamond {index}'s configuration: {exc}")
            return
        self._record(index, pid)

    def _stage_stopped(self, index: int, kdamond: Kdamond) -> tuple[Journal, Kdamond | None]:
        journal = Journal()
        try:
            before = self._prepare(index, journal)
        except BaseException as exc:
            if journal.changes:  # nr_kdamonds was rewritten: the new directory goes again
                self._undo(index, None, journal, exc)
            raise
        try:
            stage(self.io, self.kdamond_dir(index), kdamond, journal)
        except BaseException as exc:
            self._undo(index, before, journal, exc)
            raise
        self._record(index, None)
        return journal, before

    def apply(self, index: int, kdamond: Kdamond) -> None:
        """Stage ``kdamond`` (validated by the model) in stopped directory ``index``.

        ``index == nr_kdamonds`` creates the directory (see ``_check_growth``).
        On failure the directory is put back as it was.
        """
        with self.owners.locked():
            self._stage_stopped(index, kdamond)

    def launch(self, kdamond: Kdamond) -> tuple[int, int]:
        """Allocate, apply and start; returns ``(index, pid)``.  Leaves nothing behind on failure."""
        with self.owners.locked():
            index = self.allocate()
            journal, before = self._stage_stopped(index, kdamond)
            try:
                return index, self.start(index)
            except BaseException as exc:
                self._undo(index, before, journal, exc)
                raise

    # -- state keywords -------------------------------------------------
    def _write_state(self, index: int, keyword: str) -> None:
        self.io.write(self.kdamond_dir(index) / "state", keyword)

    def start(self, index: int) -> int:
        """Write ``on`` to an owned stopped kdamond; returns its kthread pid."""
        with self.owners.locked():
            view = self._require_owned(index)
            if view.running:
                raise BusyError(f"kdamond {index} is already running (pid {view.pid})", errno=errno.EBUSY)
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
            pid = self.pid(index)
            if pid is None:
                raise KernelError(
                    f"kdamond {index} stopped right after starting: with vaddr/fvaddr this means "
                    "none of its target processes was alive"
                )
            self._record(index, pid)
            return pid

    def stop(self, index: int) -> bool:
        """Write ``off``; False if the kdamond had already exited by itself."""
        with self.owners.locked():
            view = self._require_owned(index)
            stopped = False
            if view.running:
                try:
                    self._write_state(index, "off")
                    stopped = True
                except KernelError as exc:
                    if exc.errno != errno.EPERM:  # EPERM: it exited meanwhile
                        raise
            self._record(index, None)
            return stopped

    def ensure_running(self, index: int) -> int:
        """The pid of kdamond ``index``; KernelError saying why if it stopped by itself."""
        pid = self.pid(index)
        if self.state(index) == "on" and pid is not None:
            return pid
        record = self.owners.get(self.root, index)
        if record is not None and record.pid is not None:
            raise KernelError(
                f"kdamond {index} (pid {record.pid}) stopped by itself: all its monitoring "
                "targets exited (or an invalid commit ended it on a kernel up to 6.14)"
            )
        raise KernelError(f"kdamond {index} is not running; start it first")

    def _stage_running(self, index: int, kdamond: Kdamond, keyword: str) -> KdamondView:
        """Stage ``kdamond`` into running kdamond ``index`` and write ``keyword``; undo on failure."""
        view = self._require_owned(index)
        if not view.running:
            raise KernelError(f"kdamond {index} is not running: {keyword} applies to a running kdamond "
                              "(apply and start a stopped one)")
        self._require_keyword(keyword)
        before = self.read(index)
        self._intend(index, view.pid)
        try:
            stage(self.io, self.kdamond_dir(index), kdamond, Journal())
            self._write_state(index, keyword)
        except BaseException as exc:
            self._undo(index, before, Journal(), exc, view.pid)
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

    def release(self, index: int) -> None:
        """Unconfigure an owned stopped kdamond (``nr_contexts`` 0) and forget it."""
        with self.owners.locked():
            view = self._require_owned(index)
            if view.running:
                raise BusyError(
                    f"kdamond {index} is running (pid {view.pid}): stop it first", errno=errno.EBUSY
                )
            if view.configured:
                self._intend(index, None)
                self.io.write(self.kdamond_dir(index) / "contexts" / "nr_contexts", 0)
            self.owners.forget(self.root, index)


def with_goals(running: Kdamond, wanted: Kdamond) -> Kdamond:
    """``running`` with each scheme's quota goals (and goal tuner) taken from ``wanted``."""
    import attrs

    have = running.contexts[0].schemes if running.contexts else ()
    new = wanted.contexts[0].schemes if wanted.contexts else ()
    if len(have) != len(new):
        raise ConfigError("schemes", f"the kdamond runs {len(have)} schemes and {len(new)} were given: "
                                     "goals-only commits keep the schemes, give one per running scheme")
    schemes = tuple(attrs.evolve(old, quota=attrs.evolve(old.quota, goals=fresh.quota.goals,
                                                          goal_tuner=fresh.quota.goal_tuner))
                    for old, fresh in zip(have, new, strict=True))
    return attrs.evolve(running, contexts=(attrs.evolve(running.contexts[0], schemes=schemes),
                                           *running.contexts[1:]))
