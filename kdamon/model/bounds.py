"""Access-pattern bounds, as written, resolved against a context's intervals.

A DAMOS access pattern is three closed ranges ``[min, max]`` in the kernel's
units: bytes, ``nr_accesses`` (sampling intervals with an access per
aggregation, at most ``aggr_us // sample_us``) and ``age`` (aggregation
intervals).  People write the last two relative to the intervals: a share
of the maximum (``0%-3%``) and a duration (``5s-max``).  Every front end
(``--scheme``, kdamon's configuration files, the peer's JSON) parses a bound
into a :class:`Bound` here and resolves it with :meth:`Bound.resolve`, so
they agree.

**Closed-range rule.**  A range written in a relative unit stands for
exactly the whole counts whose value lies inside it: a lower bound rounds
*up*, an upper bound rounds *down*.  At 3 ms sampling and 100 ms
aggregation the maximum is 33, so ``nr_accesses=0%-3%`` becomes ``[0, 0]``
(one access is 3.03 %, more than the 3 % asked for) and ``3%-100%`` becomes
``[1, 33]``; at 3 s aggregation ``age=5s-max`` becomes ``[2, max]``
(6 s, never a region younger than asked: a single aggregation is only 3 s).
Rounding to the nearest count or truncating both bounds would let a scheme
act on regions outside the range the user gave, which for ``pageout`` of
"cold" memory means paging out memory that is hotter or younger than asked.
A range that contains no count comes out inverted (``3%-3%`` at a maximum of
33 is ``[1, 0]``) and matches nothing, as the kernel does.

A bound in the field's own unit (bytes, ``N samples``, ``N aggr_intervals``,
a plain count in kdamon's notation) follows :mod:`kdamon.model.units`'
rounding rule for whole units.  ``min`` is 0 and ``max`` the field's largest
value.  A resolved bound above the largest value (the kernel keeps
``nr_accesses`` and ``age`` in 32 bits) is the largest value: exact for an
upper bound; a lower bound that high keeps only regions at the ceiling.

Plain numbers differ by dialect: in kdamon's notation a plain
``nr_accesses`` or ``age`` bound is a count (``5`` samples, ``5``
aggregations); in damo's it is a percentage and microseconds, as damo
writes them.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Literal

import attrs

from kdamon.errors import ConfigError
from kdamon.model.config import UINT_MAX, ULONG_MAX, AccessPattern, Intervals
from kdamon.model.units import (
    Dialect,
    parse_count,
    parse_duration_exact_us,
    parse_percent_exact,
    parse_range,
    parse_size,
)

__all__ = ["Bound", "BoundKind", "PatternBounds", "Side", "parse_bound", "parse_bounds", "resolve_pattern_field"]

Side = Literal["min", "max"]
BoundKind = Literal["sz", "nr_accesses", "age"]
_KINDS: tuple[BoundKind, ...] = ("sz", "nr_accesses", "age")
_HIGH: dict[str, int] = {"sz": ULONG_MAX, "nr_accesses": UINT_MAX, "age": UINT_MAX}
_COUNT_SUFFIX = {"nr_accesses": "samples", "age": "aggr_intervals"}


@attrs.frozen
class Bound:
    """One end of a range: ``amount`` of the field's own unit (``count``), of the
    maximum ``nr_accesses`` (``share``) or of microseconds (``us``)."""

    amount: Fraction
    unit: Literal["count", "share", "us"] = "count"

    def resolve(self, side: Side, *, max_nr_accesses: int, aggr_us: int, high: int = UINT_MAX) -> int:
        """The bound in whole counts (the closed-range rule), at most ``high``.

        ``max_nr_accesses`` and ``aggr_us`` are the context's; the kernel keeps
        the maximum in 32 bits, and an aggregation interval of 0 counts as 1 us.
        """
        if self.unit == "share":
            counts = self.amount * min(max_nr_accesses, UINT_MAX)
        elif self.unit == "us":
            counts = self.amount / max(aggr_us, 1)
        else:
            counts = self.amount
        rounded = counts.__ceil__() if side == "min" else counts.__floor__()
        return min(rounded, high)


def parse_bound(value: object, kind: BoundKind, field: str = "", *, dialect: Dialect = "kdamon") -> Bound:
    """One bound of a ``kind`` range: ``min``, ``max``, or a value in the kind's notations."""
    text = value.strip() if isinstance(value, str) else value
    if text in ("min", "max"):
        return Bound(Fraction(0 if text == "min" else _HIGH[kind]))
    if kind == "sz":
        return Bound(Fraction(parse_size(text, field, dialect=dialect)))
    suffix = _COUNT_SUFFIX[kind]
    if isinstance(text, str) and text.endswith(suffix):
        return Bound(Fraction(parse_count(text.removesuffix(suffix), field, dialect=dialect)))
    plain = isinstance(text, int) or (isinstance(text, str) and text[-1:].isdigit())
    if kind == "nr_accesses":
        if dialect == "damo" or (isinstance(text, str) and text.endswith("%")):
            return Bound(parse_percent_exact(text, field, dialect=dialect), "share")
        if not plain:
            raise ConfigError(
                field, f"expected a number of samples, a percentage like '10%', 'min' or 'max', got {value!r}"
            )
    elif dialect == "damo" or not plain:
        return Bound(parse_duration_exact_us(text, field, dialect=dialect), "us")
    return Bound(Fraction(parse_count(text, field)))


@attrs.frozen
class PatternBounds:
    """An access pattern as written; :meth:`resolve` gives the kernel's :class:`AccessPattern`."""

    sz: tuple[Bound, Bound] = (Bound(Fraction(0)), Bound(Fraction(ULONG_MAX)))
    nr_accesses: tuple[Bound, Bound] = (Bound(Fraction(0)), Bound(Fraction(UINT_MAX)))
    age: tuple[Bound, Bound] = (Bound(Fraction(0)), Bound(Fraction(UINT_MAX)))

    def resolve(self, intervals: Intervals) -> AccessPattern:
        values: dict[str, int] = {}
        for kind in _KINDS:
            low, high = getattr(self, kind)
            values[f"{kind}_min"] = _resolve(low, kind, "min", intervals)
            values[f"{kind}_max"] = _resolve(high, kind, "max", intervals)
        return AccessPattern(**values)


def parse_bounds(value: str, kind: BoundKind, field: str = "", *, dialect: Dialect = "kdamon") -> tuple[Bound, Bound]:
    """``"MIN-MAX"`` of a ``kind`` range."""
    low, high = parse_range(value, field)
    return parse_bound(low, kind, field, dialect=dialect), parse_bound(high, kind, field, dialect=dialect)


def _resolve(bound: Bound, kind: BoundKind, side: Side, intervals: Intervals) -> int:
    return bound.resolve(side, max_nr_accesses=intervals.max_nr_accesses, aggr_us=intervals.aggr_us, high=_HIGH[kind])


def resolve_pattern_field(
    value: object, name: str, intervals: Intervals, field: str = "", *, dialect: Dialect = "kdamon"
) -> int:
    """``value`` of the :class:`AccessPattern` field ``name`` (``age_min``, ...) as the kernel counts it."""
    for kind in _KINDS:
        for side in ("min", "max"):
            if name == f"{kind}_{side}":
                return _resolve(parse_bound(value, kind, field, dialect=dialect), kind, side, intervals)
    raise ValueError(f"{name!r} is not a field of AccessPattern")
