"""Parsing and formatting of durations, sizes and ratios."""

from __future__ import annotations

from collections.abc import Callable

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


@pytest.mark.parametrize(("text", "us"), [
    ("5ms", 5_000), ("100 us", 100), ("100µs", 100), ("1.5s", 1_500_000), ("2m", 120_000_000),
    ("1h", 3_600_000_000), ("2000ns", 2), (" 7 ", 7), ("5MS", 5_000), (42, 42), (0, 0),
])
def test_parse_duration_us(text: str | int, us: int) -> None:
    assert parse_duration_us(text) == us


@pytest.mark.parametrize(("text", "ms"), [("1.5s", 1500), ("100ms", 100), ("3000us", 3), ("9", 9)])
def test_parse_duration_ms(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize(("text", "nbytes"), [
    ("4KiB", 4096), ("4K", 4096), ("4k", 4096), ("1MiB", 2**20), ("1.5GiB", 3 * 2**29),
    ("2T", 2**41), ("1EiB", 2**60), ("512B", 512), ("4096", 4096), (7, 7),
])
def test_parse_size(text: str | int, nbytes: int) -> None:
    assert parse_size(text) == nbytes


@pytest.mark.parametrize(("parse", "text", "value"), [
    (parse_ratio_bp, "50%", 5000), (parse_ratio_bp, "12.34%", 1234), (parse_ratio_bp, 77, 77),
    (parse_ratio_permil, "50%", 500), (parse_ratio_permil, "50.5%", 505),
    (parse_ratio_permil, "100%", 1000),
])
def test_parse_ratio(parse: Callable[[object], int], text: str | int, value: int) -> None:
    assert parse(text) == value


@pytest.mark.parametrize(("parse", "value", "fragment"), [
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
])
def test_parse_errors_name_the_field(parse: Callable[[object, str], int], value: object,
                                     fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(value, "a.b[0].c")
    assert info.value.field == "a.b[0].c"
    assert fragment in info.value.message


@pytest.mark.parametrize(("format_", "value", "text"), [
    (format_duration_us, 5000, "5ms"), (format_duration_us, 0, "0us"),
    (format_duration_us, 1500, "1500us"), (format_duration_us, 120_000_000, "2m"),
    (format_duration_us, 3_600_000_000, "1h"), (format_duration_ms, 1500, "1500ms"),
    (format_duration_ms, 2000, "2s"), (format_size, 4096, "4KiB"), (format_size, 1536, "1536B"),
    (format_size, 0, "0B"), (format_size, 3 * 2**30, "3GiB"), (format_ratio_bp, 5000, "50%"),
    (format_ratio_bp, 1234, "12.34%"), (format_ratio_bp, 1, "0.01%"),
    (format_ratio_permil, 505, "50.5%"), (format_ratio_permil, 0, "0%"),
    (format_duration_us, -5000, "-5ms"), (format_ratio_bp, -50, "-0.5%"),
])
def test_format_exact(format_: Callable[[int], str], value: int, text: str) -> None:
    assert format_(value) == text


def test_format_approx() -> None:
    assert format_duration_us(1500, approx=True) == "1.5ms"
    assert format_duration_ms(90_000, approx=True) == "1.5m"
    assert format_size(1536, approx=True) == "1.5KiB"
    assert format_size(1000, approx=True) == "1000B"
    assert format_size(2**20 + 1, approx=True) == "1MiB"


@settings(max_examples=150)
@given(value=st.integers(0, 2**64 - 1),
       unit=st.sampled_from(("us", "ms", "bytes", "bp", "permil")))
def test_format_then_parse_is_identity(value: int, unit: units.Unit) -> None:
    text = units.format_value(value, unit)
    assert parse_value(text, unit, "f") == value
