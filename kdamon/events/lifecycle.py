"""Hand process exits to an engine operations set (its ``target_valid`` primitive).

The engine asks ``ops.target_valid(target)`` at the top of every sampling
iteration and stops once no target is valid (``kdamond_need_stop()``).
:func:`exit_aware` wraps any operations set so that a target whose process
the :class:`~kdamon.events.proc.ProcessWatcher` saw exit is invalid at once,
whatever the wrapped set would say (``/proc`` polling can also be fooled by
a reused pid).  Everything else is delegated unchanged, including the
optional DAMOS primitives.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar, cast

from kdamon.events.proc import ProcessWatcher

__all__ = ["exit_aware"]


class _HasPid(Protocol):
    @property
    def pid(self) -> int | None: ...


OpsT = TypeVar("OpsT")


class _ExitAwareOps:
    """Delegates every attribute to ``inner`` except ``target_valid``."""

    def __init__(self, inner: Any, watcher: ProcessWatcher) -> None:
        self._inner = inner
        self._watcher = watcher

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def target_valid(self, target: _HasPid) -> bool:
        pid = target.pid
        if pid is not None and not self._watcher.alive(pid):
            return False
        return bool(self._inner.target_valid(target))


def exit_aware(ops: OpsT, watcher: ProcessWatcher) -> OpsT:
    """``ops`` whose ``target_valid`` also says False once ``watcher`` saw the target exit.

    The result passes for ``ops``'s type (attribute access is delegated);
    start the watcher on the targets' pids before the monitor starts.
    """
    return cast(OpsT, _ExitAwareOps(ops, watcher))
