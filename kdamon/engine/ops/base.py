"""The interface between the engine's core and an address space (``struct damon_operations``).

The core knows an address space only through the seven primitives of
:class:`Operations`.  An operations set that can also act on memory for
DAMOS implements :class:`SchemeOps` and lists the actions it applies; the
monitor refuses schemes with any other action but ``stat`` (or, asked to,
only counts them), see :mod:`kdamon.engine.actions`.  One that can take a
new target while it runs (a process forked meanwhile) implements
:class:`TargetOps`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from kdamon.engine.context import MonitorContext, TargetState
    from kdamon.model.config import Scheme

__all__ = ["Operations", "ScoreKind", "SchemeOps", "TargetOps"]

ScoreKind = Literal["hot", "cold", "max"]


@runtime_checkable
class Operations(Protocol):
    """The seven primitives of an address space."""

    name: str
    """Short name, e.g. ``"synthetic"`` or ``"vaddr/smaps"``."""

    capabilities: str
    """What one access check observes: reads and/or writes, per page or per
    mapping, and its side effects on the monitored system."""

    def init(self, ctx: MonitorContext) -> None:
        """Set up the initial regions of targets that have none."""
        ...

    def update(self, ctx: MonitorContext) -> None:
        """Refresh the regions from the address space (every ``update_us``)."""
        ...

    def prepare_access_checks(self, ctx: MonitorContext) -> None:
        """Pick a sampling address per region and clear its accessed state."""
        ...

    def check_accesses(self, ctx: MonitorContext) -> int:
        """Record whether each sampling address was accessed; return the
        highest ``nr_accesses`` of all regions."""
        ...

    def reset_aggregated(self, ctx: MonitorContext) -> None:
        """Hook at the end of each aggregation interval."""
        ...

    def target_valid(self, target: TargetState) -> bool:
        """Whether the target can still be monitored (e.g. the process lives)."""
        ...

    def cleanup(self, ctx: MonitorContext) -> None:
        """Release what :meth:`init` acquired."""
        ...


@runtime_checkable
class SchemeOps(Protocol):
    """Optional DAMOS support of an operations set (``apply_scheme``, ``get_scheme_score``)."""

    applied_actions: tuple[str, ...]
    """The actions :meth:`apply_scheme` performs (``stat``, which applies nothing, aside)."""

    def apply_scheme(self, ctx: MonitorContext, target: TargetState, start: int, end: int, scheme: Scheme) -> int:
        """Apply ``scheme.action`` to ``[start, end)``; return the bytes it was applied to."""
        ...

    def score_kind(self, action: str) -> ScoreKind:
        """Which score prioritises regions under a quota: ``hot``, ``cold``, or
        ``max`` (every region scores 99)."""
        ...


@runtime_checkable
class TargetOps(Protocol):
    """Optional: targets added while the monitor runs (the kernel appends them by ``commit``)."""

    def add_target(self, ctx: MonitorContext, target: TargetState) -> None:
        """Set up ``target`` (the next index of ``ctx.targets``, not in it yet) as :meth:`Operations.init`
        sets up the targets at the start; raise :class:`~kdamon.errors.EngineError` if it cannot be
        monitored (e.g. its process is gone), leaving nothing of it behind."""
        ...
