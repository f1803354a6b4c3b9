"""The value types of kdamon's options: one grammar for durations and counts on every command.

Each is an ``argparse`` ``type``: a bad value is a usage error (exit code 2)
that says what is expected, given before anything runs.

Durations take units (``ns``, ``us``, ``ms``, ``s``, ``m``, ``h``, ``d``,
combined as ``1m30s``).  A plain number is seconds (``--duration 30``), except
for DAMON's monitoring intervals (``--sample``, ``--aggr``, ``--update``,
``--refresh-interval``): DAMON's own files count those in microseconds (or
milliseconds) and damo reads a plain number that way, so there a plain number
is refused rather than guessed, and a unit is asked for (``0`` needs none; DAMON
takes zero intervals as they are).
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable

from kdamon.errors import ConfigError

__all__ = ["count", "duration", "interval_ms", "interval_us", "port"]


def _usage_error(convert: Callable[[str], int]) -> Callable[[str], int]:
    """``convert`` with a model ``ConfigError`` turned into the usage error argparse reports."""

    @functools.wraps(convert)
    def typed(text: str) -> int:
        try:
            return convert(text)
        except ConfigError as error:
            raise argparse.ArgumentTypeError(error.message) from None

    return typed


def _not_negative(text: str) -> None:
    if text.strip().startswith("-"):
        raise argparse.ArgumentTypeError(f"cannot be negative, got {text!r}")


def duration(*, zero: bool = False) -> Callable[[str], int]:
    """A command-line duration in microseconds (``30s``, ``10m``, ``1m30s``; a plain number is
    seconds); zero is refused unless ``zero``."""

    @_usage_error
    def duration(text: str) -> int:  # argparse names the type by its function's name
        from kdamon.model import parse_seconds_us

        _not_negative(text)
        value = parse_seconds_us(text)
        if value == 0 and not zero:
            raise argparse.ArgumentTypeError(f"must be longer than 0, got {text!r}")
        return value

    return duration


def _interval(text: str, parse: Callable[[str], int]) -> int:
    _not_negative(text)
    stripped = text.strip()
    if stripped.isdigit() and int(stripped) != 0:
        raise argparse.ArgumentTypeError(
            f"give a unit, e.g. {stripped}us or {stripped}ms: a plain number is "
            "ambiguous for DAMON's intervals (its files count microseconds, "
            "kdamon's other durations are seconds)"
        )
    return parse(stripped)


@_usage_error
def interval_us(text: str) -> int:
    """A DAMON monitoring interval in microseconds: a duration with its unit (``5ms``), or 0."""
    from kdamon.model import parse_duration_us

    return _interval(text, parse_duration_us)


@_usage_error
def interval_ms(text: str) -> int:
    """A DAMON interval kept in milliseconds (``refresh_ms``): a duration with its unit, or 0."""
    from kdamon.model import parse_duration_ms

    return _interval(text, parse_duration_ms)


def count(*, minimum: int = 1) -> Callable[[str], int]:
    """A whole number of at least ``minimum``."""

    def count(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            least = "positive" if minimum == 1 else f"at least {minimum}"
            raise argparse.ArgumentTypeError(f"must be {least}, got {text!r}")
        return value

    return count


def port(text: str) -> int:
    """A TCP port, 0 (any free one) to 65535."""
    value = count(minimum=0)(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"a TCP port is at most 65535, got {text!r}")
    return value
