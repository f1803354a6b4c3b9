"""What the sysfs and debugfs drivers share, as the kernel's ``sysfs-common.c``: ownership,
allocation, staging and launching with undo, and the running-state checks.

An interface driver supplies only what it does differently:

* ``available``, ``nr_kdamonds``, ``state``, ``pid``, ``read``, ``scheme_stats``; ``_key`` (where a directory's ownership record lives),
  ``_label``/``_where`` (how messages name it); ``_observe`` (what a directory shows);
* staging: ``_create`` (a new directory), ``_keep`` (what to restore an existing one to,
  reads only), ``_write`` (the files); the :class:`Staging` they return puts things back;
* ``_start``/``_stop``: the interface's ``on`` and ``off``; ``_unconfigure``.

Crash consistency (``ownership.py``): every write to a directory comes after a pending record
(``_intend``) and before the final one (``_record``); those records are all written here.
"""

from __future__ import annotations

import abc
import errno
import functools
from enum import Enum
from pathlib import Path
from typing import ClassVar, Generic, Protocol, TypeVar

import attrs

from kdamon.errors import BusyError, KernelError, OwnershipError
from kdamon.kernel.modules import DamonModules
from kdamon.kernel.ownership import Claim, KdamondView, OwnedKdamond, OwnershipRegistry, classify
from kdamon.model import Kdamond, SchemeStats

__all__ = ["KdamondDriver", "Slot", "Staging", "Undone"]


class Undone(Enum):
    """What undoing a staging left: the old configuration, nothing, or a half-written directory."""

    RESTORED = "restored"
    EMPTIED = "emptied"
    FAILED = "failed"  # the cause carries a note; the pending record keeps the directory kdamon's


class Staging(Protocol):
    """How to put one directory back after a failed write (interface specific)."""

    def restore(self, cause: BaseException) -> Undone: ...


S = TypeVar("S", bound=Staging)


@attrs.frozen
class Slot:
    """Where ``launch`` would put a kdamond (``index``), or why none can be had without touching
    another (``why_not``)."""

    index: int | None
    why_not: str | None = None


@attrs.frozen
class _Staged(Generic[S]):
    index: int
    staging: S
    fingerprint: str


class KdamondDriver(abc.ABC, Generic[S]):
    """Kdamonds of one kernel DAMON interface, owned or not (see the module docstring)."""

    noun: ClassVar[str]  # "kdamond", "debugfs context"
    running_remedy: ClassVar[str]  # what to do about a running kdamond one wants to stage
    self_stop_note: ClassVar[str]  # why a kdamond may have stopped by itself, besides its targets

    def __init__(self, owners: OwnershipRegistry | None, modules: DamonModules) -> None:
        self.owners = owners if owners is not None else OwnershipRegistry()
        self.modules = modules

    # -- supplied by the interface ------------------------------------------
    @abc.abstractmethod
    def available(self) -> bool:
        """Whether this kernel has the interface."""

    @abc.abstractmethod
    def nr_kdamonds(self) -> int: ...

    @abc.abstractmethod
    def state(self, index: int) -> str:
        """``on`` or ``off``."""

    @abc.abstractmethod
    def scheme_stats(self, index: int) -> list[SchemeStats]:
        """Each scheme's counters, as the interface last published them."""

    @abc.abstractmethod
    def pid(self, index: int) -> int | None:
        """The kdamond's thread pid, None while it does not run."""

    @abc.abstractmethod
    def read(self, index: int) -> Kdamond:
        """The configuration staged for ``index``."""

    @abc.abstractmethod
    def _key(self, index: int) -> tuple[Path, int]:
        """Where ``index``'s ownership record is kept (``OwnershipRegistry`` root and index)."""

    @abc.abstractmethod
    def _label(self, index: int) -> str:
        """``index`` as messages name it."""

    @abc.abstractmethod
    def _where(self) -> Path:
        """The directory whose kdamonds this driver drives."""

    @abc.abstractmethod
    def _observe(self, index: int) -> KdamondView: ...

    @abc.abstractmethod
    def _fingerprint(self, index: int) -> str:
        """A digest of ``index``'s configuration files (what ownership records keep)."""

    @abc.abstractmethod
    def _running_pid(self, index: int) -> int | None:
        """The pid of ``index`` if it runs (fewer reads than a view)."""

    @abc.abstractmethod
    def _create(self, nr: int, views: list[KdamondView] | None) -> tuple[int, S]:
        """Make directory ``nr`` (``views``: of the existing ones, if known); returns the index it
        got and how to remove it again."""

    @abc.abstractmethod
    def _keep(self, index: int, view: KdamondView, interrupted: bool) -> S:
        """What to put stopped directory ``index`` back to (reads only)."""

    @abc.abstractmethod
    def _write(self, index: int, kdamond: Kdamond, staging: S) -> None:
        """Write ``kdamond``'s files (the directory is stopped and kdamon's)."""

    @abc.abstractmethod
    def _start(self, index: int) -> list[int]:
        """Write ``on``; returns the other indices that started with it."""

    @abc.abstractmethod
    def _stop(self, index: int, views: list[KdamondView]) -> bool:
        """Write ``off`` (``views``: of the kdamonds it stops); False if they had exited meanwhile."""

    @abc.abstractmethod
    def _unconfigure(self, index: int, view: KdamondView) -> None: ...

    def _check_expressible(self, kdamond: Kdamond) -> None:
        """Refuse, before anything is written, what the interface cannot express."""

    def _stopped_together(self, view: KdamondView) -> list[KdamondView]:
        """The kdamonds stopping ``view``'s stops (each checked to be kdamon's), ``view`` among them."""
        return [view]

    def _quick_refusal(self, nr: int) -> str | None:
        """Why no kdamond can be had, seen without reading anything that takes DAMON's lock."""
        return None

    def _creation_refusal(self, views: list[KdamondView], claims: list[Claim]) -> str | None:
        """Why a new directory cannot be made beside ``views`` without touching another."""
        return None

    # -- ownership ----------------------------------------------------------
    def view(self, index: int) -> KdamondView:
        view = self._observe(index)
        return attrs.evolve(view, fingerprint=functools.cache(view.fingerprint))  # one walk at most

    def record_of(self, index: int) -> OwnedKdamond | None:
        return self.owners.get(*self._key(index))

    def claim(self, index: int, view: KdamondView | None = None) -> Claim:
        """Whether kdamon owns ``index``, it is free, or it is someone else's."""
        return classify(view if view is not None else self.view(index), self.record_of(index))

    def interrupted(self, index: int) -> bool:
        """Whether a kdamon process died while writing ``index`` (its record is pending)."""
        record = self.record_of(index)
        return record is not None and record.pending

    def _intend(self, index: int, pid: int | None) -> None:
        self.owners.intend(*self._key(index), pid)

    def _record(self, index: int, pid: int | None, fingerprint: str | None = None) -> str:
        root, key = self._key(index)
        fp = fingerprint if fingerprint is not None else self._fingerprint(index)
        self.owners.record(root, key, pid, fp)
        return fp

    def _require_owned(self, index: int) -> KdamondView:
        nr = self.nr_kdamonds()
        if index >= nr:
            raise KernelError(
                f"there is no {self.noun} {index} under {self._where()} (there are {nr}); check the index"
            )
        view = self.view(index)
        if self.claim(index, view) is not Claim.OWNED:
            raise OwnershipError(
                f"{self._label(index)} under {self._where()} (state {'on' if view.running else 'off'}, "
                f"pid {view.pid if view.pid else 'none'}) was not created by kdamon, or was re-staged by "
                f"another tool since; kdamon never modifies, starts, stops or commands a {self.noun} it "
                "did not create. Use the tool that created it"
            )
        return view

    def _require_running(self, index: int, what: str) -> KdamondView:
        view = self._require_owned(index)
        if not view.running:
            raise KernelError(
                f"{self._label(index)} is not running: {what} applies to a running "
                f"{self.noun} (apply and start a stopped one)"
            )
        return view

    # -- allocation ---------------------------------------------------------
    def _survey(self, nr: int) -> tuple[int | None, list[KdamondView], list[Claim]]:
        """The first stopped directory that is kdamon's or free, and the views and claims up to it."""
        views: list[KdamondView] = []
        claims: list[Claim] = []
        for i in range(nr):
            views.append(self.view(i))
            claims.append(self.claim(i, views[i]))
            if not views[i].running and claims[i] is not Claim.FOREIGN:
                return i, views, claims
        return None, views, claims

    def allocate(self) -> int:
        """An index to ``apply`` to: a stopped owned or free directory, else a new one."""
        nr = self.nr_kdamonds()
        index, _, _ = self._survey(nr)
        return nr if index is None else index

    def free_slot(self) -> Slot:
        """Where ``launch`` would put a kdamond, or why it cannot without touching another (reads only)."""
        nr = self.nr_kdamonds()
        quick = self._quick_refusal(nr)
        if quick is not None:
            return Slot(None, quick)
        index, views, claims = self._survey(nr)
        if index is not None:
            return Slot(index)
        why = self._creation_refusal(views, claims)
        return Slot(nr if why is None else None, why)

    # -- staging --------------------------------------------------------------
    def apply(self, index: int, kdamond: Kdamond) -> int:
        """Stage ``kdamond`` in stopped directory ``index``; returns the index it ended at.

        ``index == nr_kdamonds()`` creates a directory.  On failure everything is put back.
        """
        self._check_expressible(kdamond)
        with self.owners.locked():
            return self._apply_stopped(index, kdamond, self.nr_kdamonds()).index

    def _apply_stopped(
        self, index: int, kdamond: Kdamond, nr: int, views: list[KdamondView] | None = None
    ) -> _Staged[S]:
        if index > nr:
            raise KernelError(f"{self.noun} index {index} is beyond the {nr} there are; use {nr} or allocate()")
        if index == nr:
            index, staging = self._create(nr, views)
        else:
            view = views[index] if views is not None and index < len(views) else self.view(index)
            if self.claim(index, view) is Claim.FOREIGN:
                self._require_owned(index)  # raises the OwnershipError
            if view.running:
                raise BusyError(
                    f"{self._label(index)} is running (pid {view.pid}): {self.running_remedy}", errno=errno.EBUSY
                )
            staging = self._keep(index, view, self.interrupted(index))
        try:
            self._intend(index, None)
            self._write(index, kdamond, staging)
        except BaseException as exc:
            self._undo(index, staging, exc)
            raise
        return _Staged(index, staging, self._record(index, None))

    def _undo(self, index: int, staging: Staging, cause: BaseException, pid: int | None = None) -> None:
        """Put ``index`` back (see ``Staging``) with its record; a failure leaves the record pending."""
        root, key = self._key(index)
        self.owners.intend(root, key, pid)
        undone = staging.restore(cause)
        if undone is Undone.RESTORED:
            self._record(index, pid)
        elif undone is Undone.EMPTIED:
            self.owners.forget(root, key)

    def launch(self, kdamond: Kdamond) -> tuple[int, int]:
        """Allocate, apply and start; returns ``(index, pid)``.  Leaves nothing behind on failure."""
        self._check_expressible(kdamond)
        with self.owners.locked():
            nr = self.nr_kdamonds()
            index, views, _ = self._survey(nr)
            staged = self._apply_stopped(nr if index is None else index, kdamond, nr, views)
            try:
                return staged.index, self._start_stopped(staged.index, staged.fingerprint)
            except BaseException as exc:
                self._undo(staged.index, staged.staging, exc)
                raise

    # -- running ------------------------------------------------------------
    def start(self, index: int) -> int:
        """Start an owned stopped kdamond; returns its thread's pid."""
        with self.owners.locked():
            view = self._require_owned(index)
            if view.running:
                raise BusyError(f"{self._label(index)} is already running (pid {view.pid})", errno=errno.EBUSY)
            return self._start_stopped(index, view.fingerprint())

    def _start_stopped(self, index: int, fingerprint: str) -> int:
        for other in self._start(index):
            self._record(other, self.pid(other))
        pid = self.pid(index)
        if pid is None:
            raise KernelError(
                f"{self._label(index)} stopped right after starting: with vaddr/fvaddr this "
                "means none of its target processes was alive"
            )
        self._record(index, pid, fingerprint)
        return pid

    def stop(self, index: int) -> bool:
        """Stop an owned kdamond; False if it had already exited by itself."""
        with self.owners.locked():
            view = self._require_owned(index)
            views = self._stopped_together(view)
            stopped = any(v.running for v in views) and self._stop(index, views)
            for v in views:
                if v.index == index or v.configured:
                    self._record(v.index, None)
            return view.running and stopped

    def ensure_running(self, index: int) -> int:
        """The pid of kdamond ``index``; KernelError saying why if it stopped by itself."""
        pid = self._running_pid(index)
        if pid is not None:
            return pid
        record = self.record_of(index)
        if record is not None and record.pid is not None:
            raise KernelError(
                f"{self._label(index)} (pid {record.pid}) stopped by itself: all its "
                f"monitoring targets exited{self.self_stop_note}"
            )
        raise KernelError(f"{self._label(index)} is not running; start it first")

    def release(self, index: int) -> None:
        """Unconfigure (or remove) an owned stopped kdamond and forget it."""
        with self.owners.locked():
            view = self._require_owned(index)
            if view.running:
                raise BusyError(f"{self._label(index)} is running (pid {view.pid}): stop it first", errno=errno.EBUSY)
            root, key = self._key(index)
            self._intend(index, None)
            self._unconfigure(index, view)
            self.owners.forget(root, key)
