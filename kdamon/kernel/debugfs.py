"""The legacy DAMON debugfs driver (Linux 5.15 to 6.13), with the sysfs driver's interface.

Each debugfs context is one kdamond: index 0 is the root context
(``<root>/attrs`` ...), the others are the directories ``mk_contexts``
created, in natural name order.  kdamon names the contexts it creates
``kdamon<N>``.

What differs from sysfs, and how the driver copes:

* ``monitor_on`` starts and stops **every** debugfs context at once, so
  ``start``/``stop`` refuse unless every context is kdamon's (see
  ``ownership.py``; records are keyed by the context's directory).
* ``monitor_on`` reads ``on`` while *any* DAMON context of the system runs
  (sysfs ones too): the running state of a context comes from its
  ``kdamond_pid``.
* Starting is exclusive: ``on`` fails with EBUSY while a sysfs kdamond or a
  DAMON module runs, and sysfs ``on`` fails while debugfs contexts run.
* Context files refuse writes (and ``init_regions`` reads) with EBUSY while
  the context runs: there is no online ``commit``; stop, apply, start.
* When a context stops, the kernel drops its regions (the initial ones
  too) and, for vaddr, its targets: ``read`` after a stop shows none.  The ownership fingerprint therefore covers ``attrs`` and
  ``schemes`` only.
* A nonexistent pid in ``target_ids`` fails with ENOMEM.
* Statistics in ``schemes`` are live: there are no ``update_*`` commands.

``apply`` restores the context's previous files (or removes the context it
created) when the kernel rejects any write, so nothing is left half-applied.
Ownership, allocation, launching with undo and the running-state checks are
the driver core's (``driver_core.py``).
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
from pathlib import Path

import attrs

from kdamon.errors import (
    BusyError,
    FeatureMissingError,
    KdamonError,
    KernelError,
    OwnershipError,
)
from kdamon.kernel.debugfs_format import (
    ContextFiles,
    Layout,
    decode_context,
    encode_context,
    parse_schemes,
    parse_target_ids,
    unsupported_fields,
)
from kdamon.kernel.driver_core import KdamondDriver, Undone
from kdamon.kernel.modules import DamonModules
from kdamon.kernel.ownership import Claim, KdamondView, OwnershipRegistry
from kdamon.kernel.sysfs_io import OsFs, RawFs
from kdamon.model import Context, Kdamond, SchemeStats

__all__ = ["CONTEXT_PREFIX", "DEFAULT_ROOT", "DebugfsDriver"]

DEFAULT_ROOT = Path("/sys/kernel/debug/damon")
CONTEXT_PREFIX = "kdamon"
_CONTEXT_FILES = ("target_ids", "init_regions", "attrs", "schemes")  # write order
_HINTS = {
    ("target_ids", errno.ENOMEM): "a pid in it does not exist (debugfs reports a missing pid as ENOMEM); "
    "check that every target process is alive",
    ("attrs", errno.EINVAL): "min_nr_regions must be at least 3 and at most max_nr_regions "
    "(and, from 6.4, sample_us at most aggr_us)",
    ("init_regions", errno.EINVAL): "every region needs start < end, sorted and non-overlapping per "
    "target, and an id that names an existing target; all regions were cleared",
    ("schemes", errno.EINVAL): "a scheme has a min above its max in the access pattern, watermarks not "
    "high >= mid >= low, or an action this kernel lacks",
    ("mk_contexts", errno.EEXIST): "a context of that name exists already",
    ("rm_contexts", errno.ENOENT): "no context of that name exists",
}


def _natural_key(name: str) -> list[tuple[int, int | str]]:
    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", name) if part]


def _release_at_least(release: str, major: int, minor: int) -> bool:
    m = re.match(r"(\d+)\.(\d+)", release)
    return m is None or (int(m[1]), int(m[2])) >= (major, minor)


@attrs.define
class _Staging:
    """What undoes a staging of context directory ``cdir``: its files before (None: remove the
    context, which the staging created)."""

    driver: DebugfsDriver
    cdir: Path
    before: ContextFiles | None
    was_owned: bool = False

    def restore(self, cause: BaseException) -> Undone:
        driver, cdir = self.driver, self.cdir
        try:
            if self.before is None:
                driver._write_file(driver.root / "rm_contexts", f"{cdir.name}\n")
            else:
                driver._stage(cdir, self.before)
        except KdamonError as exc:
            what = f"remove the new debugfs context {cdir.name}" if self.before is None else f"restore {cdir}"
            cause.add_note(f"undo failed: could not {what}: {exc}")
            return Undone.FAILED
        return Undone.RESTORED if self.was_owned else Undone.EMPTIED


class DebugfsDriver(KdamondDriver[_Staging]):
    """Drives DAMON through its debugfs directory ``root`` (see the module docstring)."""

    noun = "debugfs context"
    running_remedy = "debugfs cannot change a running context: stop it, apply, start again"
    self_stop_note = " (and the kernel dropped them)"

    def __init__(
        self,
        root: Path = DEFAULT_ROOT,
        *,
        fs: RawFs | None = None,
        owners: OwnershipRegistry | None = None,
        modules: DamonModules | None = None,
        kernel_release: str | None = None,
    ) -> None:
        self.root = root
        self.fs: RawFs = fs if fs is not None else OsFs()
        super().__init__(owners, modules if modules is not None else DamonModules())
        self.kernel_release = kernel_release if kernel_release is not None else os.uname().release

    # -- file access ----------------------------------------------------
    def _read_file(self, path: Path) -> str:
        try:
            return self.fs.read(path)
        except OSError as exc:
            raise self._error(exc, path, None) from exc

    def _write_file(self, path: Path, text: str) -> None:
        try:
            self.fs.write(path, text.encode())
        except OSError as exc:
            raise self._error(exc, path, text) from exc

    def _error(self, exc: OSError, path: Path, written: str | None) -> KernelError:
        err = exc.errno if exc.errno is not None else errno.EIO
        action = f"writing {written.strip()!r} to" if written is not None else "reading"
        where = f"{action} {path} failed with {errno.errorcode.get(err, err)}"
        if err == errno.ENOENT and (path.name, err) not in _HINTS:
            return FeatureMissingError(
                f"{where}: the file does not exist; this kernel lacks that debugfs file, or the context "
                "was removed meanwhile", path=str(path), errno=err,
            )  # fmt: skip
        if err == errno.EBUSY:
            return BusyError(
                f"{where}: the context's kdamond runs (debugfs changes nothing of a running context, "
                "and creates or removes contexts only while no DAMON context runs); stop it first",
                path=str(path), errno=err,
            )  # fmt: skip
        hint = _HINTS.get((path.name, err))
        if hint is None and err in (errno.EPERM, errno.EACCES):
            hint = "DAMON's debugfs files need root, and kernel lockdown (e.g. Secure Boot) forbids them; use the sysfs interface"
        return KernelError(f"{where}: {hint or os.strerror(err)}", path=str(path), errno=err)

    # -- layout ---------------------------------------------------------
    def available(self) -> bool:
        """Whether this kernel has DAMON's debugfs interface at ``root``."""
        return self.fs.exists(self.root / "kdamond_pid")

    def layout(self) -> Layout:
        return Layout(
            schemes=self.fs.exists(self.root / "schemes"),
            region_ids_are_indices=_release_at_least(self.kernel_release, 5, 18),
        )

    def monitor_path(self) -> Path:
        """``monitor_on``, renamed ``monitor_on_DEPRECATED`` in 6.9."""
        renamed = self.root / "monitor_on_DEPRECATED"
        return renamed if self.fs.exists(renamed) else self.root / "monitor_on"

    def deprecation_notice(self) -> str | None:
        """The kernel's ``DEPRECATED`` notice (6.9+), None on older kernels."""
        path = self.root / "DEPRECATED"
        return self._read_file(path).strip() if self.fs.exists(path) else None

    def monitor_on(self) -> bool:
        """``monitor_on``: whether *any* DAMON context of the system runs, sysfs ones included."""
        return self._read_file(self.monitor_path()).strip() == "on"

    # -- contexts -------------------------------------------------------
    def contexts(self) -> list[str]:
        """Context names by index: ``""`` (the root context) first."""
        names = [n for n in self.fs.listdir(self.root) if self.fs.exists(self.root / n / "attrs")]
        return ["", *sorted(names, key=_natural_key)]

    def nr_kdamonds(self) -> int:
        return len(self.contexts())

    def context_dir(self, index: int) -> Path:
        names = self.contexts()
        if not 0 <= index < len(names):
            raise KernelError(
                f"there is no debugfs context {index} under {self.root} (it has {len(names)}); check the index"
            )
        return self.root / names[index]

    def pid(self, index: int) -> int | None:
        """The context's kdamond pid, None while it does not run."""
        text = self._read_file(self.context_dir(index) / "kdamond_pid").strip()
        return None if text == "none" else int(text)

    def state(self, index: int) -> str:
        return "off" if self.pid(index) is None else "on"

    def read(self, index: int) -> Kdamond:
        """The context's configuration.  While it runs, targets come without regions
        (the kernel refuses to read ``init_regions`` then)."""
        cdir, layout = self.context_dir(index), self.layout()
        regions = layout.schemes and self.pid(index) is None
        context = decode_context(
            self._read_file(cdir / "attrs"),
            self._read_file(cdir / "target_ids"),
            self._read_file(cdir / "init_regions") if regions else None,
            self._read_file(cdir / "schemes") if layout.schemes else None,
            layout,
        )
        return Kdamond(contexts=(context,))

    def scheme_stats(self, index: int) -> list[SchemeStats]:
        """Each scheme's live counters (5.16: only ``nr_tried``/``sz_tried``; the rest are None)."""
        path = self.context_dir(index) / "schemes"
        if not self.fs.exists(path):
            return []
        return [stats for _, stats in parse_schemes(self._read_file(path))]

    def _snapshot(self, cdir: Path) -> ContextFiles:
        """A stopped context's files as text that writing back restores (``42`` becomes ``paddr``)."""
        target_ids = self._read_file(cdir / "target_ids")
        if parse_target_ids(target_ids)[0] == "paddr":
            target_ids = "paddr\n"
        has_schemes = self.fs.exists(cdir / "schemes")
        return ContextFiles(
            attrs=self._read_file(cdir / "attrs"),
            target_ids=target_ids,
            init_regions=self._read_file(cdir / "init_regions") if has_schemes else None,
            schemes=self._scheme_inputs(cdir) if has_schemes else None,
        )

    def _scheme_inputs(self, cdir: Path) -> str:
        """``schemes`` without the statistics: the text that recreates them."""
        lines = [" ".join(line.split()[:18]) for line in self._read_file(cdir / "schemes").splitlines() if line.strip()]
        return "".join(f"{line}\n" for line in lines)

    # -- ownership ------------------------------------------------------
    def _fingerprint(self, index: int) -> str:
        """A digest of what only a writer changes: ``attrs`` and the schemes' input fields."""
        cdir = self.context_dir(index)
        text = self._read_file(cdir / "attrs")
        if self.fs.exists(cdir / "schemes"):
            text += self._scheme_inputs(cdir)
        return hashlib.sha256(text.encode()).hexdigest()

    def _require_all_owned(self, why: str) -> list[KdamondView]:
        views = [self.view(i) for i in range(self.nr_kdamonds())]
        for view in views:
            if view.configured and self.claim(view.index, view) is not Claim.OWNED:
                raise OwnershipError(
                    f"{why}, and {self._label(view.index)} is not kdamon's: "
                    "monitor_on starts and stops every debugfs context together. Ask its owner to remove it"
                )
        return views

    # -- the driver core's hooks ------------------------------------------
    def _key(self, index: int) -> tuple[Path, int]:
        return self.context_dir(index), 0

    def _label(self, index: int) -> str:
        name = self.contexts()[index]
        return f"debugfs context {index} ({name or 'the root context'})"

    def _where(self) -> Path:
        return self.root

    def _observe(self, index: int) -> KdamondView:
        cdir = self.context_dir(index)
        pid = self.pid(index)
        has_targets = bool(self._read_file(cdir / "target_ids").split())
        has_schemes = self.fs.exists(cdir / "schemes") and bool(self._read_file(cdir / "schemes").strip())
        return KdamondView(
            index=index,
            running=pid is not None,
            pid=pid,
            configured=has_targets or has_schemes,
            fingerprint=lambda: self._fingerprint(index),
        )

    def _running_pid(self, index: int) -> int | None:
        return self.pid(index)

    def _check_expressible(self, kdamond: Kdamond) -> None:
        problems = unsupported_fields(kdamond, self.layout())
        if problems:
            raise FeatureMissingError(
                "the debugfs interface cannot express "
                + "; ".join(problems)
                + ". Use the sysfs interface (Linux 5.18+) for these, or drop them"
            )

    def _create(self, nr: int, views: list[KdamondView] | None) -> tuple[int, _Staging]:
        """``mk_contexts`` a context named ``kdamon<N>``; its index is where its name sorts."""
        taken = set(self.contexts())
        name = next(f"{CONTEXT_PREFIX}{n}" for n in range(1, nr + 2) if f"{CONTEXT_PREFIX}{n}" not in taken)
        self._write_file(self.root / "mk_contexts", f"{name}\n")
        return self.contexts().index(name), _Staging(self, self.root / name, None)

    def _keep(self, index: int, view: KdamondView, interrupted: bool) -> _Staging:
        cdir = self.context_dir(index)
        return _Staging(self, cdir, self._snapshot(cdir), self.record_of(index) is not None)

    def _write(self, index: int, kdamond: Kdamond, staging: _Staging) -> None:
        self._stage(
            self.context_dir(index),
            encode_context(kdamond.contexts[0] if kdamond.contexts else Context(), self.layout()),
        )

    def _stage(self, cdir: Path, files: ContextFiles) -> None:
        for name in _CONTEXT_FILES:
            text = getattr(files, name)
            if text is not None:
                self._write_file(cdir / name, text or "\n")

    def _stopped_together(self, view: KdamondView) -> list[KdamondView]:
        return self._require_all_owned("stopping means writing 'off' to monitor_on")

    def _start(self, index: int) -> list[int]:
        """Write ``on``, which starts every debugfs context."""
        views = self._require_all_owned("starting means writing 'on' to monitor_on")
        running = [v for v in views if v.running]
        if running:
            raise BusyError(
                f"{self._label(running[0].index)} already runs (kdamond pid {running[0].pid}); stop it first",
                errno=errno.EBUSY,
            )
        empty = [
            self._label(v.index) for v in views if not self._read_file(self.context_dir(v.index) / "target_ids").split()
        ]
        if empty:
            raise KernelError(
                f"{', '.join(empty)} has no targets, and monitor_on starts every context: "
                "give it targets (apply) or remove it (release)",
                path=str(self.monitor_path()), errno=errno.EINVAL,
            )  # fmt: skip
        try:
            self._write_file(self.monitor_path(), "on\n")
        except BusyError as exc:
            raise self._busy_reason() from exc
        return [v.index for v in views if v.index != index]

    def _busy_reason(self) -> BusyError:
        modules = [m.title for m in self.modules.running()]
        who = f"{' and '.join(modules)} (enabled)" if modules else "a sysfs kdamond (kdamonds/*/state is on)"
        return BusyError(
            f"debugfs contexts start only while no other DAMON context runs, and {who} runs: stop it "
            "first (kdamon never stops what it did not start)",
            path=str(self.monitor_path()), errno=errno.EBUSY,
        )  # fmt: skip

    def _stop(self, index: int, views: list[KdamondView]) -> bool:
        """Write ``off``, which stops every debugfs context."""
        try:
            self._write_file(self.monitor_path(), "off\n")
        except KernelError as exc:
            if exc.errno != errno.EPERM:
                raise
            still = [self._label(i) for i in range(len(views)) if self.pid(i) is not None]
            if still:
                raise KernelError(
                    f"'off' stopped no context past the first one that had exited by itself, so "
                    f"{', '.join(still)} still runs (the kernel's damon_stop gives up at "
                    "the first stopped context); it ends when its target processes exit",
                    path=str(self.monitor_path()), errno=errno.EPERM,
                ) from exc  # fmt: skip
            return False
        return True

    def _unconfigure(self, index: int, view: KdamondView) -> None:
        """Remove the context (``rm_contexts``), or clear the root context."""
        cdir = self.context_dir(index)
        if index == 0:
            self._stage(cdir, encode_context(Context(), self.layout()))
        else:
            self._write_file(self.root / "rm_contexts", f"{cdir.name}\n")
