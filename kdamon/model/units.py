"""kdamon's one notation for durations, sizes, ratios and counts, both ways.

Two dialects share one grammar and one arithmetic: ``kdamon`` (the command
line and kdamon's configuration files: ``5ms``, ``1.5s``, ``1m30s``,
``4KiB``, ``50%``) and ``damo``, the peer's human text in its ``kdamonds``
JSON (``"5 ms"``, ``"1 m 30 s"``, ``"4.000 KiB"``, ``"50 %"``).  Both take
blanks between number and unit, decimals and compound durations; damo's
adds thousands separators (``"1,024"``), ``KB`` meaning 1024 as damo reads
it, ``min``/``max`` for the field's lowest and highest value, and JSON
floats (read as their decimal text).

Units, case-insensitive, blanks allowed between number and unit:

* durations: ``ns``, ``us`` (or ``µs``), ``ms``, ``s``, ``m`` (minutes),
  ``h``, ``d``; several terms add up (``1m30s``);
* sizes: binary multiples only: ``K``/``KiB`` = 1024, ``M``/``MiB``, ...,
  ``E``/``EiB``, and ``B``.  kdamon refuses ``KB``, ``MB``, ... (1000 or
  1024?); the damo dialect reads them as damo does, as 1024 multiples;
* ratios: ``"50%"``, 5000 in a ``_bp`` (1/10000) field, 500 in a
  ``_permil`` (1/1000) one.

A plain number (an int, or text without a unit) is in the field's own unit.

**Exact, and one rounding rule.**  Numbers are read as decimal fractions and
converted with integer arithmetic (``fractions.Fraction``), never floats, so
``2**64-1`` bytes or microseconds survive any spelling.  A field holds whole
units.  A value that is not a whole number of the field's unit stands for
*the nearest whole unit, if that lies within half of the written number's
last digit*; otherwise it is refused.  So a number written coarser than the
field (damo prints 4097 bytes as ``"4.001 KiB"``: 1.024 bytes per last
digit) stands for the whole unit it rounds to, while one written finer than
the field and not whole (``"1.5us"`` for microseconds, ``"0.01%"`` for
permil, ``"1500us"`` for milliseconds) is a mistake and says so.  A value
exactly halfway rounds up.  Values beyond a field's range are left to the
model's validation.

Access-pattern bounds that depend on the monitoring intervals (a percentage
of the maximum ``nr_accesses``, an age as a duration) follow the closed-range
rule of :mod:`kdamon.model.bounds`: a lower bound rounds up and an upper bound
rounds down, so ``0%-3%`` keeps exactly the regions accessed in at most 3 % of
the samples and ``5s-max`` only regions at least 5 s old.

Errors are :class:`~kdamon.errors.ConfigError` naming the field given by
the caller.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Literal, NamedTuple

from kdamon.errors import ConfigError

__all__ = [
    "Dialect",
    "Unit",
    "format_duration_ms",
    "format_duration_us",
    "format_ratio_bp",
    "format_ratio_permil",
    "format_size",
    "format_value",
    "parse_address",
    "parse_count",
    "parse_duration_exact_us",
    "parse_duration_ms",
    "parse_duration_us",
    "parse_percent_exact",
    "parse_range",
    "parse_ratio_bp",
    "parse_ratio_permil",
    "parse_seconds_us",
    "parse_size",
    "parse_value",
]

Unit = Literal["us", "ms", "bytes", "bp", "permil"]
"""The units a model field can be declared in (see ``config.field_unit``)."""

Dialect = Literal["kdamon", "damo"]
"""Whose notation a value is written in (see the module docstring)."""

ULONG_MAX = 2**64 - 1


class _Family(NamedTuple):
    """A family of units: suffix -> multiple of the family's smallest unit."""

    name: str
    example: str
    table: dict[str, int]
    spellings: str
    ambiguous: frozenset[str] = frozenset()
    compound: bool = False


_DURATIONS = _Family(
    "duration",
    "5ms",
    {
        "ns": 1,
        "us": 1_000,
        "µs": 1_000,
        "ms": 1_000_000,
        "s": 1_000_000_000,
        "m": 60_000_000_000,
        "h": 3_600_000_000_000,
        "d": 86_400_000_000_000,
    },
    "ns, us, ms, s, m, h, d",
    compound=True,
)
_SIZES = _Family(
    "size",
    "4KiB",
    {"b": 1}
    | {spelling: 1024**power for power, prefix in enumerate("kmgtpe", start=1) for spelling in (prefix, prefix + "ib")},
    "B, K or KiB, M or MiB, G or GiB, T or TiB, P or PiB, E or EiB",
    frozenset(prefix + "b" for prefix in "kmgtpe"),
)
_RATIOS = _Family("ratio", "50%", {"%": 100}, "%")
_COUNTS = _Family("whole number", "10", {}, "no unit")

# Formatting order: largest unit first; one spelling per factor.
_DURATION_FMT = (
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
)
_SIZE_FMT = tuple((p.upper() + "iB", 1024**i) for i, p in reversed(list(enumerate("kmgtpe", 1))))
_SIZE_FMT += (("B", 1),)

# A term: a number (at most 30 whole digits, far beyond any 64-bit value, and up to
# 80 decimals, enough for any 64-bit count of EiB), blanks, a unit that starts with
# neither a digit, a dot nor a comma.  damo's whole part may group digits by three.
_TERM_RE = re.compile(r"\s*(\d{1,3}(?:,\d{3}){1,9}|\d{1,30})(?:\.(\d{1,80}))?\s*([^\d\s.,]+)?")

_US_NS = 1_000
_MS_NS = 1_000_000
_PERMIL_BP = 10


class _Quantity(NamedTuple):
    """A value as written, in a family's smallest unit: its exact amount and the
    weight of its last written digit (the precision it was written with)."""

    amount: Fraction
    digit: Fraction


def _text(value: object, field: str, family: _Family, dialect: Dialect) -> str:
    """``value`` as text to parse; a float is damo's (its decimal spelling), else refused."""
    if isinstance(value, str):
        return value
    if dialect == "damo" and isinstance(value, float):
        return format(Decimal(repr(value)), "f")  # the shortest decimal that reads back as this float
    raise ConfigError(field, f"expected an integer or a {family.name} like {family.example!r}, got {value!r}")


def _quantity(value: object, field: str, family: _Family, per_unit: int, dialect: Dialect) -> _Quantity:
    """Parse ``value`` exactly; a plain number counts units worth ``per_unit``.

    ``min`` and ``max`` are not handled here (they need the field's range).
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return _Quantity(Fraction(value * per_unit), Fraction(per_unit))
    text = _text(value, field, family, dialect)
    expected = f"expected an integer or a {family.name} like {family.example!r}, got {value!r}"
    amount, digit, pos, terms = Fraction(0), Fraction(per_unit), 0, 0
    while pos < len(text) and (terms == 0 or text[pos:].strip()):
        match = _TERM_RE.match(text, pos)
        if match is None:
            raise ConfigError(field, expected)
        whole, decimals, suffix = match.group(1), match.group(2) or "", match.group(3)
        if "," in whole and dialect != "damo":
            raise ConfigError(field, f"{expected} (without thousands separators)")
        if terms and (not suffix or not family.compound):
            raise ConfigError(field, expected)
        factor = per_unit if suffix is None else _factor(suffix, value, field, family, dialect)
        if suffix is None and match.end() < len(text):
            raise ConfigError(field, expected)
        weight = Fraction(factor, 10 ** len(decimals))
        amount += int(whole.replace(",", "") + decimals) * weight
        digit = min(digit, weight) if terms else weight
        pos, terms = match.end(), terms + 1
    if terms == 0:
        raise ConfigError(field, expected)
    return _Quantity(amount, digit)


def _factor(suffix: str, value: object, field: str, family: _Family, dialect: Dialect) -> int:
    key = suffix.lower()
    if key in family.table:
        return family.table[key]
    if key in family.ambiguous:
        if dialect == "damo":
            return family.table[key[0]]
        raise ConfigError(
            field, f"{value!r} is ambiguous: write {key[0].upper()}iB for a multiple of 1024, or the number of bytes"
        )
    raise ConfigError(field, f"unknown unit {suffix!r} in {value!r}; use {family.spellings}")


def _whole(q: _Quantity, per_unit: int, value: object, field: str) -> int:
    """The whole number of units worth ``per_unit`` that ``q`` stands for (the module's rounding rule)."""
    exact = q.amount / per_unit
    nearest = (exact + Fraction(1, 2)).__floor__()
    if abs(exact - nearest) * 2 > q.digit / per_unit:
        raise ConfigError(
            field, f"{value!r} is not a whole number of the field's unit; use a smaller unit or round the value"
        )
    return nearest


def _parse(value: object, field: str, family: _Family, per_unit: int, dialect: Dialect, high: int) -> int:
    if dialect == "damo" and isinstance(value, str) and value.strip() in ("min", "max"):
        return 0 if value.strip() == "min" else high
    return _whole(_quantity(value, field, family, per_unit, dialect), per_unit, value, field)


def parse_duration_us(value: object, field: str = "", *, dialect: Dialect = "kdamon", high: int = ULONG_MAX) -> int:
    """A duration in microseconds: ``"5ms"`` -> 5000; a plain int is microseconds."""
    return _parse(value, field, _DURATIONS, _US_NS, dialect, high)


def parse_duration_ms(value: object, field: str = "", *, dialect: Dialect = "kdamon", high: int = ULONG_MAX) -> int:
    """A duration in milliseconds: ``"1.5s"`` -> 1500; a plain int is milliseconds."""
    return _parse(value, field, _DURATIONS, _MS_NS, dialect, high)


def parse_size(value: object, field: str = "", *, dialect: Dialect = "kdamon", high: int = ULONG_MAX) -> int:
    """A size in bytes: ``"4KiB"`` or ``"4K"`` -> 4096; a plain int is bytes."""
    return _parse(value, field, _SIZES, 1, dialect, high)


def parse_ratio_bp(value: object, field: str = "", *, dialect: Dialect = "kdamon", high: int = ULONG_MAX) -> int:
    """A ratio in 1/10000: ``"50%"`` -> 5000; a plain int is basis points."""
    return _parse(value, field, _RATIOS, 1, dialect, high)


def parse_ratio_permil(value: object, field: str = "", *, dialect: Dialect = "kdamon", high: int = ULONG_MAX) -> int:
    """A ratio in 1/1000: ``"50%"`` -> 500; a plain int is permil."""
    return _parse(value, field, _RATIOS, _PERMIL_BP, dialect, high)


def parse_count(value: object, field: str = "", *, dialect: Dialect = "kdamon", high: int = ULONG_MAX) -> int:
    """A whole number without unit: ``"10"`` -> 10; damo's ``"1,000"`` too."""
    return _parse(value, field, _COUNTS, 1, dialect, high)


def parse_duration_exact_us(value: object, field: str = "", *, dialect: Dialect = "kdamon") -> Fraction:
    """A duration in microseconds, as exact as written (``"1.5us"`` -> 3/2); for values that
    are rounded later, against an interval.  A plain number is microseconds."""
    return _quantity(value, field, _DURATIONS, _US_NS, dialect).amount / _US_NS


def parse_percent_exact(value: object, field: str = "", *, dialect: Dialect = "kdamon") -> Fraction:
    """A percentage as an exact share: ``"12.5%"`` -> 1/8; a plain number is percent."""
    return _quantity(value, field, _RATIOS, 100, dialect).amount / 10000


def parse_seconds_us(value: object, field: str = "") -> int:
    """A command-line duration in microseconds: ``"30s"``, ``"5ms"``, ``"10m"``; a plain number is seconds."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = f"{value}s"
    elif isinstance(value, str) and (match := _TERM_RE.fullmatch(value.strip())) and match.group(3) is None:
        value = value.strip() + "s"
    return parse_duration_us(value, field)


def parse_address(text: str, field: str = "") -> int:
    """An address: hex (``0x1000``), decimal, or a size (``4KiB``)."""
    try:
        return int(text.strip(), 0)
    except ValueError:
        return parse_size(text.strip(), field)


def parse_range(value: str, field: str = "") -> tuple[str, str]:
    """The two bounds of ``"MIN-MAX"``, as written (``min``/``max`` included)."""
    low, sep, high = value.partition("-")
    if not sep or not low.strip() or not high.strip():
        raise ConfigError(field, f"expected MIN-MAX, got {value!r}")
    return low.strip(), high.strip()


def parse_value(value: object, unit: Unit, field: str = "", *, dialect: Dialect = "kdamon") -> int:
    """Parse ``value`` for a field declared in ``unit``."""
    return _PARSERS[unit](value, field, dialect=dialect)


_PARSERS: dict[str, Callable[..., int]] = {
    "us": parse_duration_us,
    "ms": parse_duration_ms,
    "bytes": parse_size,
    "bp": parse_ratio_bp,
    "permil": parse_ratio_permil,
}


def _format(amount: int, units: tuple[tuple[str, int], ...], approx: bool) -> str:
    """``amount`` (in the family's smallest unit) in the largest fitting unit.

    Exact: the largest unit that divides ``amount``, so that parsing the text
    gives ``amount`` back.  Approximate: the largest unit not above
    ``amount``, with up to two decimals.
    """
    if amount < 0:
        return "-" + _format(-amount, units, approx)
    for name, factor in units:
        if approx and amount >= factor:
            return f"{amount / factor:.2f}".rstrip("0").rstrip(".") + name
        if not approx and amount % factor == 0 and (amount or factor == units[-1][1]):
            return f"{amount // factor}{name}"
    return f"{amount}{units[-1][0]}"


def format_duration_us(us: int, *, approx: bool = False) -> str:
    """Microseconds as ``"5ms"``, ``"1m"``, ``"1500us"`` (``approx``: ``"1.5ms"``)."""
    return _format(us * _US_NS, _DURATION_FMT[:-1], approx)


def format_duration_ms(ms: int, *, approx: bool = False) -> str:
    """Milliseconds as ``"1s"``, ``"1500ms"`` (``approx``: ``"1.5s"``)."""
    return _format(ms * _MS_NS, _DURATION_FMT[:-2], approx)


def format_size(nbytes: int, *, approx: bool = False) -> str:
    """Bytes as ``"4KiB"``, ``"1536B"`` (``approx``: ``"1.5KiB"``)."""
    return _format(nbytes, _SIZE_FMT, approx)


def _format_ratio(amount: int, per_percent: int) -> str:
    if amount < 0:
        return "-" + _format_ratio(-amount, per_percent)
    whole_part, rest = divmod(amount, per_percent)
    if not rest:
        return f"{whole_part}%"
    digits = len(str(per_percent)) - 1
    return f"{whole_part}.{rest:0{digits}d}".rstrip("0") + "%"


def format_ratio_bp(bp: int) -> str:
    """Basis points as a percentage: 5000 -> ``"50%"``, 1234 -> ``"12.34%"``."""
    return _format_ratio(bp, 100)


def format_ratio_permil(permil: int) -> str:
    """Permil as a percentage: 505 -> ``"50.5%"``."""
    return _format_ratio(permil, 10)


def format_value(value: int, unit: Unit) -> str:
    """``value`` of a field declared in ``unit``, in the exact compact form."""
    return _FORMATTERS[unit](value)


_FORMATTERS: dict[str, Callable[[int], str]] = {
    "us": format_duration_us,
    "ms": format_duration_ms,
    "bytes": format_size,
    "bp": format_ratio_bp,
    "permil": format_ratio_permil,
}
