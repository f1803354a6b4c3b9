"""Waiting on a condition in tests, instead of sleeping a fixed time and hoping."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["wait_until"]

T = TypeVar("T")


def wait_until(value: Callable[[], T], done: Callable[[T], bool], what: str, *, timeout_s: float = 60.0) -> T:
    """Poll ``value()`` until ``done`` accepts it and return it; fail saying ``what`` was awaited.

    The timeout is a safety net against a hang, never a measured bound (a TCG guest on a busy
    host can be many times slower than the DAMON intervals suggest).
    """
    deadline = time.monotonic() + timeout_s
    delay = 0.01
    while True:
        current = value()
        if done(current):
            return current
        if time.monotonic() >= deadline:
            raise AssertionError(f"waited {timeout_s:.0f} s for {what}; last seen: {current!r}")
        time.sleep(delay)
        delay = min(delay * 2, 0.2)
