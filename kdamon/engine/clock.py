"""Time for the engine: a real clock for live monitoring, a virtual one for tests.

The monitor only ever asks a clock for the time and to sleep, so the same
loop runs live (:class:`RealClock`) or as a discrete simulation
(:class:`VirtualClock`), where sleeping advances time instantly and a run of
an hour of monitoring takes as long as its computations.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "RealClock", "VirtualClock"]


@runtime_checkable
class Clock(Protocol):
    """What the monitor needs from time."""

    virtual: bool
    """True when sleeping only advances a counter (simulation)."""

    def now_ns(self) -> int:
        """Monotonic time in nanoseconds."""
        ...

    def sleep_ns(self, ns: int) -> None:
        """Sleep ``ns`` nanoseconds, or less if :meth:`wake` is called meanwhile."""
        ...

    def wake(self) -> None:
        """Cut a sleep short (used by :meth:`Monitor.stop`); safe from any thread."""
        ...


class RealClock:
    """``time.monotonic_ns`` and an interruptible sleep."""

    virtual = False

    def __init__(self) -> None:
        self._wakeup = threading.Event()

    def now_ns(self) -> int:
        return time.monotonic_ns()

    def sleep_ns(self, ns: int) -> None:
        if ns <= 0:
            return
        if self._wakeup.wait(ns / 1e9):
            self._wakeup.clear()

    def wake(self) -> None:
        self._wakeup.set()


class VirtualClock:
    """A clock that never waits: sleeping adds to the current time."""

    virtual = True

    def __init__(self, start_ns: int = 0) -> None:
        self._now_ns = start_ns

    def now_ns(self) -> int:
        return self._now_ns

    def sleep_ns(self, ns: int) -> None:
        if ns > 0:
            self._now_ns += ns

    def wake(self) -> None:
        """Nothing to cut short: virtual sleeps are instant."""
