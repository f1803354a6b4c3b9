"""Property tests: loading never fails with anything but ConfigError; dump/load is identity."""

from __future__ import annotations

import json
from typing import Any

import attrs
import tomli_w
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kdamon.errors import ConfigError
from kdamon.model import (
    FORMATS,
    Config,
    Context,
    Filter,
    Kdamond,
    QuotaGoal,
    Scheme,
    Target,
    config_to_dict,
    dump_config,
    load_config,
)
from model_strategies import configs

# Keys the model knows, so that random documents often get past the top level.
_KEYS = sorted(
    {a.name for cls in (Config, Kdamond, Context, Target, Scheme, Filter, QuotaGoal) for a in attrs.fields(cls)}
    | {"intervals", "nr_regions", "quota", "start"}
)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**65), 2**65)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["5ms", "4KiB", "50%", "vaddr", "paddr", "addr", "1.5us", "4KB"])
    | st.text(max_size=8)
)
_JSON_LIKE = st.recursive(
    _SCALARS,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=25,
)


@st.composite
def _mutated_configs(draw: st.DrawFn) -> Any:
    """A valid configuration's data with one value replaced or one key added."""
    data = config_to_dict(draw(configs))
    containers: list[Any] = [data]
    stack: list[Any] = [data]
    while stack:
        node = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, (dict, list)):
                containers.append(child)
                stack.append(child)
    node = draw(st.sampled_from(containers))
    junk = draw(_JSON_LIKE)
    replace = draw(st.integers(0, 3)) > 0  # mostly replace: adding a key fails early
    if isinstance(node, dict) and node and replace:
        node[draw(st.sampled_from(sorted(node)))] = junk
    elif isinstance(node, dict):
        node[draw(st.sampled_from(_KEYS) | st.text(max_size=6))] = junk
    elif node and replace:
        node[draw(st.integers(0, len(node) - 1))] = junk
    else:
        node.append(junk)
    return data


def _texts(data: Any) -> list[tuple[str, str]]:
    texts = [("json", json.dumps(data)), ("yaml", yaml.safe_dump(data))]
    try:
        texts.append(("toml", tomli_w.dumps(data)))
    except (TypeError, AttributeError):
        pass  # TOML has no null and needs a table at the top
    return texts


def _check_load(data: Any) -> None:
    for fmt, text in _texts(data):
        try:
            config = load_config(text, fmt)
        except ConfigError as error:
            assert isinstance(error.field, str) and error.field, (fmt, text)
            assert error.message, (fmt, text)
        else:
            assert isinstance(config, Config)
            assert load_config(dump_config(config, fmt), fmt) == config


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(_JSON_LIKE)
def test_arbitrary_documents_load_or_raise_config_error(data: Any) -> None:
    _check_load(data)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated_configs())
def test_damaged_configs_load_or_raise_config_error(data: Any) -> None:
    _check_load(data)


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(configs)
def test_dump_then_load_is_identity(config: Config) -> None:
    for fmt in FORMATS:
        assert load_config(dump_config(config, fmt), fmt) == config
