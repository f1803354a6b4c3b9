"""Write a staged configuration into one kdamond directory, with undo.

Order: ``nr_*`` counts top-down (each written only when the count changes,
because any ``nr_*`` write rebuilds every child directory with defaults),
then the feature check (a non-default value for a file this kernel lacks is
refused before any leaf is written), then every leaf once.
"""

from __future__ import annotations

from pathlib import Path

from kdamon.errors import FeatureMissingError, KdamonError
from kdamon.kernel.sysfs_io import SysfsIO
from kdamon.kernel.sysfs_plan import Count, Leaf, Plan, plan_kdamond
from kdamon.model import Kdamond

__all__ = ["Journal", "stage"]


class Journal:
    """The ``nr_*`` writes one call made, so that it can put the counts back."""

    def __init__(self) -> None:
        self.changes: list[tuple[Path, int, int]] = []  # (nr file, old, new)

    def write_count(self, io: SysfsIO, path: Path, old: int, new: int) -> None:
        io.write(path, new)  # a refused write changed nothing: no rewrite of ``old`` on rollback
        self.changes.append((path, old, new))

    def rollback(self, io: SysfsIO, cause: BaseException) -> bool:
        """Restore the old counts, outermost first; a failure is noted on ``cause`` (then False)."""
        dirs = [p.parent for p, _, _ in self.changes]
        restored = True
        for path, old, _ in self.changes:
            # A rewrite of an enclosing count already rebuilt this directory.
            if any(d != path.parent and d in path.parents for d in dirs):
                continue
            try:
                io.write(path, old)
            except KdamonError as exc:
                cause.add_note(f"undo failed: could not restore {path} to {old}: {exc}")
                restored = False
        self.changes.clear()
        return restored


class _Counts:
    """The ``nr_*`` values of one staging, known without reading them where possible.

    After an ``nr_*`` write the kernel rebuilds each child directory with its
    defaults, so every count below it is 0; ``fresh``: the whole kdamond
    directory was just created or emptied.
    """

    def __init__(self, io: SysfsIO, kdir: Path, journal: Journal, fresh: bool) -> None:
        self.io, self.kdir, self.journal = io, kdir, journal
        self.fresh = fresh
        self.known: dict[str, int] = {}
        self.rebuilt: list[str] = []  # directories whose numbered children are new

    def current(self, rel: str) -> int:
        if rel in self.known:
            return self.known[rel]
        if self.fresh or any(rel.startswith(d) and rel[len(d) :].split("/", 1)[0].isdigit() for d in self.rebuilt):
            return 0
        return self.io.read_int(self.kdir / rel)

    def apply(self, counts: tuple[Count, ...]) -> None:
        for count in counts:
            path = self.kdir / count.path
            if not self.io.exists(path):
                if count.value == 0:
                    continue
                raise FeatureMissingError(
                    f"{count.field} needs {path}, which this kernel lacks (DAMON sysfs has it "
                    f"since Linux {count.since}): use a newer kernel or leave {count.field} empty",
                    path=str(path),
                )
            current = self.current(count.path)
            if current != count.value:
                self.journal.write_count(self.io, path, current, count.value)
                self.rebuilt.append(count.path.rpartition("/")[0] + "/")
            self.known[count.path] = count.value


def _present_leaves(io: SysfsIO, kdir: Path, plan: Plan) -> list[Leaf]:
    """The leaves whose files exist; refuses non-default values for missing files."""
    present, missing = [], []
    for leaf in plan.leaves:
        if io.exists(kdir / leaf.path):
            present.append(leaf)
        elif leaf.value != leaf.default:
            missing.append(leaf)
    if missing:
        listed = "; ".join(f"{leaf.field} = {leaf.value!r} needs {leaf.path} (Linux {leaf.since}+)" for leaf in missing)
        raise FeatureMissingError(
            f"the running kernel's DAMON lacks files this configuration uses: {listed}. "
            "Use a newer kernel or set those fields to their defaults",
            path=str(kdir / missing[0].path),
        )
    return present


def stage(io: SysfsIO, kdir: Path, kdamond: Kdamond, journal: Journal, *, fresh: bool = False) -> None:
    """Make ``kdir``'s files describe ``kdamond`` (state is not touched).

    ``fresh``: ``kdir`` was just created or emptied (``nr_contexts`` 0), so its counts need no reading.
    """
    counts = _Counts(io, kdir, journal, fresh)
    # Whether filters go to core_filters/ops_filters (6.15+) can only be seen
    # in a scheme directory: create the skeleton first, then plan for real.
    skeleton = plan_kdamond(kdamond, layered=False)
    counts.apply(tuple(c for c in skeleton.counts if "filters/" not in c.path))
    layered = io.exists(kdir / "contexts" / "0" / "schemes" / "0" / "core_filters")
    plan = plan_kdamond(kdamond, layered=True) if layered else skeleton
    counts.apply(plan.counts)
    for leaf in _present_leaves(io, kdir, plan):
        io.write(kdir / leaf.path, leaf.value)
