"""Parsing and formatting of durations, sizes and ratios."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kdamon.errors import ConfigError
from kdamon.model import units
from kdamon.model.units import (
    format_duration_ms,
    format_duration_us,
    format_ratio_bp,
    format_ratio_permil,
    format_size,
    parse_duration_ms,
    parse_duration_us,
    parse_ratio_bp,
    parse_ratio_permil,
    parse_size,
    parse_value,
)


@pytest.mark.parametrize(
    ("text", "us"),
    [
        ("5ms", 5_000),
        ("100 us", 100),
        ("100µs", 100),
        ("1.5s", 1_500_000),
        ("2m", 120_000_000),
        ("1h", 3_600_000_000),
        ("2000ns", 2),
        (" 7 ", 7),
        ("5MS", 5_000),
        (42, 42),
        (0, 0),
    ],
)
def test_parse_duration_us(text: str | int, us: int) -> None:
    assert parse_duration_us(text) == us


@pytest.mark.parametrize(("text", "ms"), [("1.5s", 1500), ("100ms", 100), ("3000us", 3), ("9", 9)])
def test_parse_duration_ms(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize(
    ("text", "nbytes"),
    [
        ("4KiB", 4096),
        ("4K", 4096),
        ("4k", 4096),
        ("1MiB", 2**20),
        ("1.5GiB", 3 * 2**29),
        ("2T", 2**41),
        ("1EiB", 2**60),
        ("512B", 512),
        ("4096", 4096),
        (7, 7),
    ],
)
def test_parse_size(text: str | int, nbytes: int) -> None:
    assert parse_size(text) == nbytes


@pytest.mark.parametrize(
    ("parse", "text", "value"),
    [
        (parse_ratio_bp, "50%", 5000),
        (parse_ratio_bp, "12.34%", 1234),
        (parse_ratio_bp, 77, 77),
        (parse_ratio_permil, "50%", 500),
        (parse_ratio_permil, "50.5%", 505),
        (parse_ratio_permil, "100%", 1000),
    ],
)
def test_parse_ratio(parse: Callable[[object], int], text: str | int, value: int) -> None:
    assert parse(text) == value


@pytest.mark.parametrize(
    ("parse", "value", "fragment"),
    [
        (parse_duration_us, "1.5us", "not a whole number"),
        (parse_duration_ms, "1500us", "not a whole number"),
        (parse_duration_us, "5 parsecs", "unknown unit 'parsecs' in '5 parsecs'; use ns, us, ms"),
        (parse_duration_us, "-5ms", "like '5ms'"),
        (parse_duration_us, "", "like '5ms'"),
        (parse_duration_us, True, "got True"),
        (parse_duration_us, 1.0, "got 1.0"),
        (parse_duration_us, None, "got None"),
        (parse_size, "4KB", "ambiguous: write KiB"),
        (parse_size, "1GB", "ambiguous: write GiB"),
        (parse_size, "1.5B", "not a whole number"),
        (parse_size, "4 KiB extra", "like '4KiB'"),
        (parse_ratio_bp, "0.001%", "not a whole number"),
        (parse_ratio_bp, "50ms", "unknown unit 'ms'"),
        (parse_size, "1" * 40, "like '4KiB'"),
    ],
)
def test_parse_errors_name_the_field(parse: Callable[[object, str], int], value: object, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(value, "a.b[0].c")
    assert info.value.field == "a.b[0].c"
    assert fragment in info.value.message


@pytest.mark.parametrize(
    ("format_", "value", "text"),
    [
        (format_duration_us, 5000, "5ms"),
        (format_duration_us, 0, "0us"),
        (format_duration_us, 1500, "1500us"),
        (format_duration_us, 120_000_000, "2m"),
        (format_duration_us, 3_600_000_000, "1h"),
        (format_duration_ms, 1500, "1500ms"),
        (format_duration_ms, 2000, "2s"),
        (format_size, 4096, "4KiB"),
        (format_size, 1536, "1536B"),
        (format_size, 0, "0B"),
        (format_size, 3 * 2**30, "3GiB"),
        (format_ratio_bp, 5000, "50%"),
        (format_ratio_bp, 1234, "12.34%"),
        (format_ratio_bp, 1, "0.01%"),
        (format_ratio_permil, 505, "50.5%"),
        (format_ratio_permil, 0, "0%"),
        (format_duration_us, -5000, "-5ms"),
        (format_ratio_bp, -50, "-0.5%"),
    ],
)
def test_format_exact(format_: Callable[[int], str], value: int, text: str) -> None:
    assert format_(value) == text


def test_format_approx() -> None:
    assert format_duration_us(1500, approx=True) == "1.5ms"
    assert format_duration_ms(90_000, approx=True) == "1.5m"
    assert format_size(1536, approx=True) == "1.5KiB"
    assert format_size(1000, approx=True) == "1000B"
    assert format_size(2**20 + 1, approx=True) == "1MiB"


@settings(max_examples=150)
@given(value=st.integers(0, 2**64 - 1), unit=st.sampled_from(("us", "ms", "bytes", "bp", "permil")))
def test_format_then_parse_is_identity(value: int, unit: units.Unit) -> None:
    text = units.format_value(value, unit)
    assert parse_value(text, unit, "f") == value


# -- one rounding rule, both dialects ---------------------------------------


@pytest.mark.parametrize(
    ("parse", "text", "value"),
    [
        (parse_size, "4.001 KiB", 4097),  # damo's 3 decimals: 1.024 bytes per last digit, nearest whole byte
        (parse_size, "1,024.000 KiB", 2**20),
        (parse_size, "128.000 MiB", 128 << 20),
        (parse_size, "4 KB", 4096),  # damo reads KB as KiB
        (parse_size, "max", 2**64 - 1),
        (parse_duration_us, "1 m 30 s", 90_000_000),
        (parse_duration_us, "1 d 2 h", 93_600_000_000),
        (parse_duration_us, "1.235 s", 1_235_000),
        (parse_duration_us, "min", 0),
        (parse_duration_ms, "1 s 500 ms", 1500),
        (parse_ratio_permil, "0.000000", 0),
        (parse_ratio_permil, "500.000000", 500),
        (parse_ratio_permil, "12.3 %", 123),
        (parse_ratio_permil, 500.0, 500),  # a JSON float, read as its decimal text
        (parse_ratio_bp, "12.34 %", 1234),
        (units.parse_count, "1,000", 1000),
        (units.parse_count, "max", 2**64 - 1),
    ],
)
def test_damo_dialect(parse: Callable[..., int], text: object, value: int) -> None:
    assert parse(text, "f", dialect="damo") == value


@pytest.mark.parametrize(
    ("parse", "text", "value"),
    [
        (parse_duration_us, "1m30s", 90_000_000),
        (parse_duration_us, "1m 30s", 90_000_000),
        (parse_duration_us, "2d", 172_800_000_000),
        (parse_size, "0.001KiB", 1),  # coarse: the nearest byte
        (parse_size, "4.001KiB", 4097),
        (parse_duration_ms, "0.0015m", 90),
        (units.parse_count, "12", 12),
    ],
)
def test_kdamon_dialect_shares_the_grammar(parse: Callable[..., int], text: str, value: int) -> None:
    assert parse(text, "f") == value


@pytest.mark.parametrize(
    ("parse", "value", "dialect", "fragment"),
    [
        (parse_size, "4.0005 KiB", "damo", "not a whole number"),  # finer than a byte and not whole
        (parse_duration_us, "1.5 us", "damo", "not a whole number"),
        (parse_ratio_permil, "12.3456 %", "damo", "not a whole number"),
        (parse_ratio_permil, 0.5, "damo", "not a whole number"),
        (parse_ratio_permil, float("nan"), "damo", "like '50%'"),
        (parse_size, "1,024", "kdamon", "without thousands separators"),
        (parse_size, "1,02", "damo", "like '4KiB'"),
        (parse_size, "max", "kdamon", "like '4KiB'"),
        (parse_size, "4 KiB 4 KiB", "damo", "like '4KiB'"),  # only durations add up
        (parse_duration_us, "1 m 30", "damo", "like '5ms'"),
        (parse_duration_us, 1.5, "kdamon", "got 1.5"),
        (units.parse_count, "5 ms", "damo", "unknown unit 'ms'"),
        (units.parse_count, "1.5", "kdamon", "not a whole number"),
    ],
)
def test_dialect_errors(parse: Callable[..., int], value: object, dialect: units.Dialect, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(value, "x.y", dialect=dialect)
    assert info.value.field == "x.y"
    assert fragment in info.value.message


def test_addresses() -> None:
    assert units.parse_address("0x1000") == 4096
    assert units.parse_address(" 8192 ") == 8192
    assert units.parse_address("4KiB") == 4096
    with pytest.raises(ConfigError, match="ambiguous"):
        units.parse_address("4KB", "--regions")


# -- exactness: no float drift up to 2**64-1 ---------------------------------


def _decimal(numerator: int, denominator: int) -> str:
    """numerator/denominator as an exact decimal (the denominator has no prime factors but 2 and 5)."""
    assert 10**80 % denominator == 0, "no finite decimal"
    whole, rest = divmod(numerator, denominator)
    digits = ""
    while rest:
        rest *= 10
        digits += str(rest // denominator)
        rest %= denominator
    return f"{whole}.{digits}" if digits else str(whole)


def _grouped(text: str) -> str:
    whole, dot, decimals = text.partition(".")
    return f"{int(whole):,}{dot}{decimals}"


_SIZE_UNITS = [("B", 1), ("KiB", 2**10), ("M", 2**20), ("GiB", 2**30), ("T", 2**40), ("PiB", 2**50), ("EiB", 2**60)]
_TIME_UNITS = [("us", 1), ("ms", 10**3), ("s", 10**6), ("m", 60 * 10**6), ("h", 3600 * 10**6), ("d", 86400 * 10**6)]


@settings(max_examples=300)
@given(
    nbytes=st.one_of(st.integers(0, 2**64 - 1), st.sampled_from([2**64 - 1, 2**63 + 1, 2**53 + 1])),
    unit=st.sampled_from(_SIZE_UNITS),
    spaced=st.booleans(),
)
def test_sizes_parse_exactly(nbytes: int, unit: tuple[str, int], spaced: bool) -> None:
    name, factor = unit
    number = _decimal(nbytes, factor)  # up to 60 decimals for EiB
    blank = " " if spaced else ""
    assert parse_size(f"{number}{blank}{name}") == nbytes
    assert parse_size(f"{_grouped(number)} {name}", dialect="damo") == nbytes


_DECIMAL_TIME_UNITS = [u for u in _TIME_UNITS if u[0] in ("us", "ms", "s")]


@st.composite
def _compound(draw: st.DrawFn, us: int) -> str:
    """``us`` as damo writes it: whole days, hours, minutes, seconds (some of them), then the rest
    in seconds, milliseconds or microseconds, possibly with decimals."""
    terms, rest = [], us
    for name, factor in reversed(_TIME_UNITS[2:]):
        if draw(st.booleans()):
            count, rest = divmod(rest, factor)
            if count:
                terms.append(f"{count:,} {name}")
    name, factor = draw(st.sampled_from(_DECIMAL_TIME_UNITS))
    terms.append(f"{_grouped(_decimal(rest, factor))} {name}")
    return " ".join(terms)


@settings(max_examples=300)
@given(us=st.one_of(st.integers(0, 2**64 - 1), st.just(2**64 - 1)), data=st.data())
def test_durations_parse_exactly(us: int, data: st.DataObject) -> None:
    name, factor = data.draw(st.sampled_from(_DECIMAL_TIME_UNITS))
    assert parse_duration_us(f"{_decimal(us, factor)}{name}") == us
    assert parse_duration_us(data.draw(_compound(us)), dialect="damo") == us
    if us % 1000 == 0:
        assert parse_duration_ms(f"{_decimal(us, factor)}{name}") == us // 1000


@settings(max_examples=200)
@given(nbytes=st.integers(1025, 2**64 - 1), unit=st.sampled_from(_SIZE_UNITS[1:]))
def test_damo_three_decimals_read_back_as_the_nearest_byte(nbytes: int, unit: tuple[str, int]) -> None:
    """damo prints sizes with 3 decimals; the nearest whole byte is the one within half a last digit."""
    name, factor = unit
    thousandths = (nbytes * 1000 + factor // 2) // factor  # damo's %.3f, rounded half up
    text = f"{_grouped(_decimal(thousandths, 1000))} {name}"
    printed = Fraction(thousandths * factor, 1000)
    parsed = parse_size(text, dialect="damo")
    assert abs(parsed - printed) <= Fraction(1, 2)
    if abs(printed - nbytes) < Fraction(1, 2):
        assert parsed == nbytes
