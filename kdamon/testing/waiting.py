"""Waiting on a condition in tests, instead of sleeping a fixed time and hoping.

The timeouts are safety nets against a hang, never measured bounds (a TCG guest on a busy host
can be many times slower than the DAMON intervals suggest).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["holds_within", "poll", "wait_until"]

T = TypeVar("T")


def poll(value: Callable[[], T], done: Callable[[T], bool], timeout_s: float) -> tuple[bool, T]:
    """Poll ``value()`` until ``done`` accepts it or ``timeout_s`` passed: whether it was accepted,
    and the last value seen."""
    deadline = time.monotonic() + timeout_s
    delay = 0.01
    while True:
        current = value()
        if done(current):
            return True, current
        if time.monotonic() >= deadline:
            return False, current
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def wait_until(value: Callable[[], T], done: Callable[[T], bool], what: str, *, timeout_s: float = 60.0) -> T:
    """Poll ``value()`` until ``done`` accepts it and return it; fail saying ``what`` was awaited."""
    accepted, current = poll(value, done, timeout_s)
    if not accepted:
        raise AssertionError(f"waited {timeout_s:.0f} s for {what}; last seen: {current!r}")
    return current


def holds_within(condition: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    """Whether ``condition()`` comes to hold within ``timeout_s`` (for a caller that has a use
    for "it did not", such as an expected failure)."""
    return poll(condition, bool, timeout_s)[0]
