"""Human units for durations, sizes and ratios, both ways.

Parsing is exact (no floating point): ``"1.5s"`` is 1500000 microseconds,
and a value that is not a whole number of the field's own unit is an error
(``"1.5us"`` for a microsecond field).  A plain integer, or a string of
digits, is taken in the field's own unit.

* Durations: ``ns``, ``us`` (or ``µs``), ``ms``, ``s``, ``m`` (minutes),
  ``h``; case-insensitive, blanks allowed between number and unit.
* Sizes: binary multiples only: ``K``/``KiB`` = 1024, ``M``/``MiB``,
  ``G``/``GiB``, ``T``/``TiB``, ``P``/``PiB``, ``E``/``EiB``, and ``B`` for
  bytes; case-insensitive.  ``KB``, ``MB``, ... are refused because they
  could mean 1000 or 1024.
* Ratios: ``"50%"``, which is 5000 in a ``_bp`` (1/10000) field and 500 in
  a ``_permil`` (1/1000) field.

Errors are :class:`~kdamon.errors.ConfigError` naming the field given by
the caller.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal, NamedTuple

import attrs

from kdamon.errors import ConfigError

__all__ = [
    "AccessBound",
    "Unit",
    "format_duration_ms",
    "format_duration_us",
    "format_ratio_bp",
    "format_ratio_permil",
    "format_size",
    "format_value",
    "parse_access_bound",
    "parse_duration_ms",
    "parse_duration_us",
    "parse_range",
    "parse_seconds_us",
    "parse_ratio_bp",
    "parse_ratio_permil",
    "parse_size",
    "parse_value",
]

Unit = Literal["us", "ms", "bytes", "bp", "permil"]
"""The units a model field can be declared in (see ``config.field_unit``)."""

class _Family(NamedTuple):
    """A family of units: suffix -> multiple of the family's smallest unit."""

    name: str
    table: dict[str, int]
    spellings: str
    ambiguous: frozenset[str] = frozenset()


_DURATIONS = _Family("duration", {
    "ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
    "m": 60_000_000_000, "h": 3_600_000_000_000,
}, "ns, us, ms, s, m, h")
_SIZES = _Family("size", {"b": 1} | {
    spelling: 1024**power
    for power, prefix in enumerate("kmgtpe", start=1) for spelling in (prefix, prefix + "ib")
}, "B, K or KiB, M or MiB, G or GiB, T or TiB, P or PiB, E or EiB",
    frozenset(prefix + "b" for prefix in "kmgtpe"))
_RATIOS = _Family("ratio", {"%": 100}, "%")

# Formatting order: largest unit first; one spelling per factor.
_DURATION_FMT = (("h", 3_600_000_000_000), ("m", 60_000_000_000), ("s", 1_000_000_000),
                 ("ms", 1_000_000), ("us", 1_000), ("ns", 1))
_SIZE_FMT = tuple((p.upper() + "iB", 1024**i) for i, p in reversed(list(enumerate("kmgtpe", 1))))
_SIZE_FMT += (("B", 1),)

# At most 30 digits on each side: far beyond any 64-bit value, and short
# enough that no conversion hits Python's int/str digit limit.  A unit
# starts with neither a digit nor a dot.
_NUMBER_RE = re.compile(r"\s*(\d{1,30}(?:\.\d{1,30})?)\s*([^\d\s.]\S*)?\s*")

_US_NS = 1_000
_MS_NS = 1_000_000
_PERMIL_BP = 10


def _parse(value: object, field: str, family: _Family, per_unit: int, example: str) -> int:
    """Parse ``value`` into a whole count of the field's unit.

    ``per_unit`` is the field's own unit in the family's smallest unit.
    """
    expected = f"expected an integer or a {family.name} like {example!r}"
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ConfigError(field, f"{expected}, got {value!r}")
    if isinstance(value, int):
        return value
    match = _NUMBER_RE.fullmatch(value)
    if match is None:
        raise ConfigError(field, f"{expected}, got {value!r}")
    number: str = match.group(1)
    whole, _, decimals = number.partition(".")
    suffix = (match.group(2) or "").lower()
    if not suffix:
        factor = per_unit
    elif suffix in family.table:
        factor = family.table[suffix]
    elif suffix in family.ambiguous:
        raise ConfigError(field, f"{value!r} is ambiguous: write {suffix[0].upper()}iB "
                                 "for a multiple of 1024, or the number of bytes")
    else:
        raise ConfigError(field, f"unknown unit {match.group(2)!r} in {value!r}; "
                                 f"use {family.spellings}")
    # The decimal number is whole.decimals = int(whole + decimals) / 10**len(decimals): exact in integers.
    numerator = int(whole + decimals) * factor
    denominator: int = 10 ** len(decimals) * per_unit
    if numerator % denominator:
        raise ConfigError(field, f"{value!r} is not a whole number of the field's unit; "
                                 "use a smaller unit or round the value")
    return numerator // denominator


def parse_duration_us(value: object, field: str = "") -> int:
    """A duration in microseconds: ``"5ms"`` -> 5000; a plain int is microseconds."""
    return _parse(value, field, _DURATIONS, _US_NS, "5ms")


def parse_duration_ms(value: object, field: str = "") -> int:
    """A duration in milliseconds: ``"1.5s"`` -> 1500; a plain int is milliseconds."""
    return _parse(value, field, _DURATIONS, _MS_NS, "100ms")


def parse_size(value: object, field: str = "") -> int:
    """A size in bytes: ``"4KiB"`` or ``"4K"`` -> 4096; a plain int is bytes."""
    return _parse(value, field, _SIZES, 1, "4KiB")


def parse_ratio_bp(value: object, field: str = "") -> int:
    """A ratio in 1/10000: ``"50%"`` -> 5000; a plain int is basis points."""
    return _parse(value, field, _RATIOS, 1, "50%")


def parse_ratio_permil(value: object, field: str = "") -> int:
    """A ratio in 1/1000: ``"50%"`` -> 500; a plain int is permil."""
    return _parse(value, field, _RATIOS, _PERMIL_BP, "50%")


def parse_seconds_us(value: object, field: str = "") -> int:
    """A command-line duration in microseconds: ``"30s"``, ``"5ms"``, ``"10m"``; a plain number is seconds."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = f"{value}s"
    elif isinstance(value, str):
        match = _NUMBER_RE.fullmatch(value)
        if match is not None and match.group(2) is None:
            value = match.group(1) + "s"
    return parse_duration_us(value, field)


@attrs.frozen
class AccessBound:
    """A bound of an access-frequency range: a count of sampling intervals, or a share of the maximum.

    The maximum (``aggr_us / sample_us``) is known only with the intervals,
    so a share is resolved late, with :meth:`resolve`.
    """

    count: int = 0
    permil: int | None = None

    def resolve(self, max_nr_accesses: int) -> int:
        """The bound in ``nr_accesses`` for a kdamond whose maximum is ``max_nr_accesses``."""
        if self.permil is None:
            return self.count
        return self.permil * max_nr_accesses // 1000


def parse_access_bound(text: str, field: str = "") -> AccessBound:
    """``"5"`` (sampling intervals) or ``"10%"`` (of the maximum)."""
    text = text.strip()
    if text.endswith("%"):
        return AccessBound(permil=parse_ratio_permil(text, field))
    if not text.isdigit():
        raise ConfigError(field, f"expected a number of accesses or a percentage like '10%', got {text!r}")
    return AccessBound(count=int(text))


def parse_range(value: str, field: str = "") -> tuple[str, str]:
    """The two bounds of ``"MIN-MAX"``, as written (``min``/``max`` included)."""
    low, sep, high = value.partition("-")
    if not sep or not low.strip() or not high.strip():
        raise ConfigError(field, f"expected MIN-MAX, got {value!r}")
    return low.strip(), high.strip()


def parse_value(value: object, unit: Unit, field: str = "") -> int:
    """Parse ``value`` for a field declared in ``unit``."""
    return _PARSERS[unit](value, field)


_PARSERS: dict[str, Callable[[object, str], int]] = {
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
    whole, rest = divmod(amount, per_percent)
    if not rest:
        return f"{whole}%"
    digits = len(str(per_percent)) - 1
    return f"{whole}.{rest:0{digits}d}".rstrip("0") + "%"


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
