"""Which DAMOS actions the engine can apply, and the schemes it can only count.

The kernel's operations sets apply most actions; from user space the
engine's vaddr operations can give another process only the advice
``process_madvise(2)`` accepts (``willneed``, ``cold``, ``pageout``,
``collapse``), and its paddr operations can act on no page frame at all.
A scheme whose action the operations set cannot apply would be tried and
never applied, its stats saying nothing about why, so the engine refuses it
before monitoring starts, unless asked to only count it, as a ``stat``
scheme (``Monitor(stat_only=True)``, ``kdamon start --engine-stat-only``).
``stat`` applies nothing anywhere and is never refused.
"""

from __future__ import annotations

from collections.abc import Collection

import attrs

from kdamon.engine.ops.base import Operations, SchemeOps
from kdamon.model.config import Context, Scheme

__all__ = ["CountedOnly", "applied_actions", "counted_only", "stat_only_schemes"]

_WHY = {
    "vaddr": "process_madvise(2) takes only these for another process",
    "fvaddr": "process_madvise(2) takes only these for another process",
    "paddr": "user space cannot act on physical page frames",
}


def applied_actions(ops: str) -> tuple[str, ...]:
    """The actions the engine's own operations set for ``ops`` (a context's ``ops``) applies."""
    from kdamon.engine.ops.paddr import PaddrOps
    from kdamon.engine.ops.vaddr import VaddrOps

    return PaddrOps.applied_actions if ops == "paddr" else VaddrOps.applied_actions


def _join(words: list[str], last: str) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} {last} {words[-1]}"


@attrs.frozen
class CountedOnly:
    """The schemes of a context whose action an operations set cannot apply."""

    ops: str
    """The operations set, as the message names it (``vaddr``, ``paddr``, ``synthetic``)."""
    applied: tuple[str, ...]
    """The actions it applies (``stat`` aside)."""
    schemes: tuple[tuple[int, str], ...]
    """``(index, action)`` of each scheme it cannot apply, in configuration order."""
    why: str = ""

    @property
    def indexes(self) -> tuple[int, ...]:
        return tuple(index for index, _ in self.schemes)

    def __bool__(self) -> bool:
        return bool(self.schemes)

    def short(self) -> str:
        """``scheme 1 (hugepage)``, ``schemes 1 (hugepage) and 2 (migrate_hot)``."""
        items = [f"{index} ({action})" for index, action in self.schemes]
        return f"scheme{'s' if len(items) > 1 else ''} {_join(items, 'and')}"

    def explain(self) -> str:
        """What the engine cannot apply and what it applies, in one sentence."""
        items = [f"{action} (scheme {index})" for index, action in self.schemes]
        why = f" ({self.why})" if self.why else ""
        if self.applied:
            applies = (
                f"it applies only {_join(list(self.applied), 'and')} there{why}, besides stat, which applies nothing"
            )
        else:
            applies = f"it applies no action there{why}: only stat schemes, which count, run on it"
        return f"kdamon's engine cannot apply {_join(items, 'or')} to {self.ops} targets: {applies}"


def counted_only(context: Context, ops: Operations | None = None) -> CountedOnly:
    """The schemes of ``context`` whose action ``ops`` (by default the engine's
    operations set for ``context.ops``) cannot apply."""
    if ops is None:
        applied: Collection[str] = applied_actions(context.ops)
        name, why = context.ops, _WHY.get(context.ops, "")
    else:
        applied = ops.applied_actions if isinstance(ops, SchemeOps) else ()
        name, why = ops.name, ""
    schemes = tuple(
        (index, scheme.action)
        for index, scheme in enumerate(context.schemes)
        if scheme.action != "stat" and scheme.action not in applied
    )
    return CountedOnly(name, tuple(applied), schemes, why)


def stat_only_schemes(schemes: tuple[Scheme, ...], indexes: Collection[int]) -> tuple[Scheme, ...]:
    """``schemes`` with those at ``indexes`` turned into ``stat`` schemes."""
    return tuple(
        attrs.evolve(scheme, action="stat") if index in indexes else scheme for index, scheme in enumerate(schemes)
    )
