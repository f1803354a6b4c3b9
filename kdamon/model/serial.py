"""Configuration files: JSON, YAML and TOML to and from :class:`Config`.

Input is strict about shapes and keys (an unknown key is an error, a
boolean is not an integer) and lenient about units: fields declared with a
unit accept ``"5ms"``, ``"4KiB"``, ``"50%"`` (see :mod:`kdamon.model.units`),
and every integer field accepts a string of decimal digits.  A scheme's
``access_pattern`` bounds take what ``--scheme`` takes: ``nr_accesses_max:
10%`` (of the context's maximum), ``age_min: 5s``, ``min``, ``max``,
resolved against the context's intervals by :mod:`kdamon.model.bounds`.  Every problem
becomes a :class:`ConfigError` whose ``field`` is the full path of the
offending value (``kdamonds[0].contexts[0].intervals.sample_us``), or
``<document>`` for the document as a whole.

Output writes every field as a plain integer, string or boolean, and leaves
out fields that are None (TOML cannot store None; loading gives the default,
which is None).  Integers above TOML's 64-bit signed range are written as
strings in TOML.  Loading what was dumped gives the same configuration in
each format.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import attrs
import cattrs
import tomli_w
import yaml
from cattrs.errors import (
    AttributeValidationNote,
    ForbiddenExtraKeysError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn, override

from kdamon.errors import ConfigError
from kdamon.model.bounds import resolve_pattern_field
from kdamon.model.config import AccessPattern, Config, Context, Intervals, field_unit, join_path, prefix_error
from kdamon.model.units import parse_value
from kdamon.userfiles import reading

__all__ = [
    "DOCUMENT",
    "FORMATS",
    "Format",
    "config_from_dict",
    "config_to_dict",
    "dump_config",
    "load_config",
    "load_config_file",
]

Format = Literal["json", "yaml", "toml"]
FORMATS: tuple[Format, ...] = ("json", "yaml", "toml")
DOCUMENT = "<document>"
"""The ``field`` of errors about the document as a whole (syntax, top-level shape)."""

_SUFFIXES: dict[str, Format] = {".json": "json", ".yaml": "yaml", ".yml": "yaml", ".toml": "toml"}
_TOML_INT_MAX = 2**63 - 1
_DIGITS_RE = re.compile(r"\s*\d{1,30}\s*", re.ASCII)
_PATTERN_FIELDS = frozenset(attrs.fields_dict(AccessPattern))
_StructureHook = Callable[[Any, Any], Any]
# Typed loosely so that per-attribute overrides can be passed as **kwargs.
_make_dict_structure_fn: Callable[..., _StructureHook] = make_dict_structure_fn


# -- structuring ---------------------------------------------------------


def _describe(value: object) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    if value is None:
        return "nothing (null)"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _structure_int(value: Any, _type: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _DIGITS_RE.fullmatch(value):
        return int(value)
    raise ConfigError("", f"expected an integer, got {_describe(value)}")


def _structure_bool(value: Any, _type: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ConfigError("", f"expected true or false, got {_describe(value)}")


def _structure_str(value: Any, _type: Any) -> str:
    if isinstance(value, str):
        return value
    raise ConfigError("", f"expected a string, got {_describe(value)}")


def _unit_hook(attribute: attrs.Attribute[Any]) -> _StructureHook | None:
    unit = field_unit(attribute)
    if unit is None:
        return None
    return lambda value, _type: parse_value(value, unit)


def _is_sequence(type_: Any) -> bool:
    return getattr(type_, "__origin__", None) is tuple


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    converter.register_structure_hook(int, _structure_int)
    converter.register_structure_hook(bool, _structure_bool)
    converter.register_structure_hook(str, _structure_str)

    def sequence_hook(type_: Any) -> _StructureHook:
        item_type = type_.__args__[0]

        def structure(value: Any, _type: Any) -> tuple[Any, ...]:
            if not isinstance(value, (list, tuple)):
                raise ConfigError("", f"expected a list, got {_describe(value)}")
            items = []
            for index, item in enumerate(value):
                try:
                    items.append(converter.structure(item, item_type))
                except Exception as error:
                    translated = _config_error(error, f"[{index}]")
                    if translated is None:
                        raise
                    raise translated from None
            return tuple(items)

        return structure

    def class_hook(cls: type) -> _StructureHook:
        attrs.resolve_types(cls)
        overrides = {
            a.name: override(struct_hook=hook) for a in attrs.fields(cls) if (hook := _unit_hook(a)) is not None
        }
        generated = _make_dict_structure_fn(cls, converter, **overrides)
        keys = ", ".join(a.name for a in attrs.fields(cls))

        def structure(value: Any, _type: Any) -> Any:
            if not isinstance(value, Mapping):
                raise ConfigError("", f"expected a mapping with keys among {keys}, got {_describe(value)}")
            odd = sorted((k for k in value if not isinstance(k, str)), key=str)
            if odd:  # (cattrs before 25.3 fails on such keys with a TypeError of its own)
                raise ConfigError(str(odd[0]), f"unknown key; valid keys are {keys}")
            if cls is Context:
                value = _resolve_bounds(value, lambda data: converter.structure(data, Intervals))
            return generated(value, cls)

        return structure

    converter.register_structure_hook_factory(_is_sequence, sequence_hook)
    converter.register_structure_hook_factory(attrs.has, class_hook)
    return converter


def _resolve_bounds(context: Mapping[str, Any], intervals_of: Callable[[Any], Intervals]) -> Mapping[str, Any]:
    """The context with the text bounds of its schemes' access patterns (``"10%"``, ``"5s"``,
    ``max``) resolved against its intervals; anything else is left to structuring."""
    schemes = context.get("schemes")
    if not isinstance(schemes, list):
        return context
    intervals: Intervals | None = None
    resolved_schemes = []
    for index, scheme in enumerate(schemes):
        pattern = scheme.get("access_pattern") if isinstance(scheme, Mapping) else None
        if isinstance(pattern, Mapping) and any(isinstance(v, str) for v in pattern.values()):
            if intervals is None:
                try:
                    intervals = intervals_of(context.get("intervals", {}))
                except Exception as error:
                    translated = _config_error(error, "intervals")
                    if translated is None:
                        raise
                    raise translated from None
            path = f"schemes[{index}].access_pattern"
            pattern = {
                name: resolve_pattern_field(value, name, intervals, join_path(path, name))
                if isinstance(value, str) and name in _PATTERN_FIELDS
                else value
                for name, value in pattern.items()
            }
            scheme = {**scheme, "access_pattern": pattern}
        resolved_schemes.append(scheme)
    return {**context, "schemes": resolved_schemes}


def _config_error(error: BaseException, prefix: str = "") -> ConfigError | None:
    """The first leaf of a cattrs error tree as a ConfigError with its full path.

    None when that leaf is not an input error (then it is a bug, not bad input).
    """
    path = prefix
    for note in getattr(error, "__notes__", ()):
        if isinstance(note, AttributeValidationNote):
            path = join_path(path, note.name)
        elif isinstance(note, IterableValidationNote):
            path = join_path(path, f"[{note.index}]")
    if isinstance(error, ConfigError):
        return prefix_error(path, error)
    if isinstance(error, ForbiddenExtraKeysError):
        key = min(error.extra_fields, key=str)
        valid = ", ".join(a.name for a in attrs.fields(error.cl))
        return ConfigError(join_path(path, str(key)), f"unknown key; valid keys are {valid}")
    if isinstance(error, BaseExceptionGroup):
        # An unknown key usually explains the other errors of its level (a typo).
        leaves = sorted(error.exceptions, key=lambda e: not isinstance(e, ForbiddenExtraKeysError))
        leaf = _config_error(leaves[0])
        return None if leaf is None else prefix_error(path, leaf)
    if isinstance(error, KeyError) and path:
        return ConfigError(path, "missing; this key is required")
    return None


_CONVERTER = _make_converter()


def config_from_dict(obj: object) -> Config:
    """Build a Config from parsed data (mappings, lists, scalars)."""
    try:
        config: Config = _CONVERTER.structure(obj, Config)
    except RecursionError:
        raise ConfigError(DOCUMENT, "the document is nested too deeply") from None
    except Exception as error:
        translated = _config_error(error)
        if translated is None:
            raise
        raise ConfigError(translated.field or DOCUMENT, translated.message) from None
    return config


def config_to_dict(config: Config) -> dict[str, Any]:
    """The configuration as plain data; fields that are None are left out."""
    data: dict[str, Any] = _drop_none(_CONVERTER.unstructure(config))
    return data


def _drop_none(data: Any) -> Any:
    if isinstance(data, dict):
        return {key: _drop_none(value) for key, value in data.items() if value is not None}
    if isinstance(data, list):
        return [_drop_none(item) for item in data]
    return data


def _toml_safe(data: Any) -> Any:
    if isinstance(data, dict):
        return {key: _toml_safe(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_toml_safe(item) for item in data]
    if isinstance(data, int) and not isinstance(data, bool) and data > _TOML_INT_MAX:
        return str(data)
    return data


# -- text ----------------------------------------------------------------


def _check_format(fmt: str) -> Format:
    for known in FORMATS:
        if fmt == known:
            return known
    raise ConfigError(DOCUMENT, f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


def _parse(text: str, fmt: Format) -> object:
    try:
        if fmt == "json":
            return json.loads(text)
        if fmt == "yaml":
            return yaml.safe_load(text)
        return tomllib.loads(text)
    except RecursionError:
        raise ConfigError(DOCUMENT, "the document is nested too deeply") from None
    except json.JSONDecodeError as error:
        raise ConfigError(DOCUMENT, f"not valid JSON: {error}") from None
    except yaml.YAMLError as error:
        raise ConfigError(DOCUMENT, f"not valid YAML: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(DOCUMENT, f"not valid TOML: {error}") from None


def load_config(text: str, fmt: str) -> Config:
    """Parse and validate a configuration written in ``fmt`` (json, yaml or toml)."""
    return config_from_dict(_parse(text, _check_format(fmt)))


def dump_config(config: Config, fmt: str) -> str:
    """The configuration as text in ``fmt``; :func:`load_config` reads it back."""
    data = config_to_dict(config)
    match _check_format(fmt):
        case "json":
            return json.dumps(data, indent=2) + "\n"
        case "yaml":
            text: str = yaml.safe_dump(data, sort_keys=False)
            return text
        case "toml":
            return tomli_w.dumps(_toml_safe(data))


def load_config_file(path: str | os.PathLike[str]) -> Config:
    """Read a configuration file whose format is given by its suffix.

    A file that cannot be read raises its ``OSError`` (naming the file).
    """
    file = Path(path)
    with reading(file):
        data = file.read_bytes()
    fmt = _SUFFIXES.get(file.suffix.lower())
    if fmt is None:
        raise ConfigError(DOCUMENT, f"cannot tell the format of {file} from its suffix: name it {', '.join(_SUFFIXES)}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(DOCUMENT, f"{file} is not UTF-8 text") from None
    return load_config(text, fmt)
