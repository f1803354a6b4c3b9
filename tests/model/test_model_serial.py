"""Loading and dumping configuration files."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from kdamon.errors import ConfigError
from kdamon.model import (
    DOCUMENT,
    FORMATS,
    ULONG_MAX,
    Config,
    Context,
    Filter,
    Intervals,
    Kdamond,
    Quota,
    QuotaWeights,
    Region,
    Scheme,
    Target,
    config_from_dict,
    config_to_dict,
    dump_config,
    load_config,
    load_config_file,
)

EXAMPLE_YAML = """
kdamonds:
  - refresh_ms: 1s
    contexts:
      - ops: vaddr
        intervals: {sample_us: 5ms, aggr_us: 100ms, update_us: 1s}
        nr_regions: {min: 10, max: 1000}
        targets:
          - pid: 1234
            regions: [{start: 4KiB, end: 1MiB}]
        schemes:
          - action: pageout
            access_pattern: {sz_min: 4K, nr_accesses_max: 0, age_min: 10}
            quota: {ms: 10ms, bytes: 128MiB, reset_interval_ms: 1s,
                    weights: {nr_accesses_permil: 50%}}
            filters: [{type: addr, addr_start: 0, addr_end: 2MiB}]
"""


def _doc(**context: Any) -> dict[str, Any]:
    return {"kdamonds": [{"contexts": [context]}]}


def test_units_are_accepted_on_input() -> None:
    config = load_config(EXAMPLE_YAML, "yaml")
    kdamond = config.kdamonds[0]
    context = kdamond.contexts[0]
    scheme = context.schemes[0]
    assert kdamond.refresh_ms == 1000
    assert context.intervals == Intervals(sample_us=5000, aggr_us=100000, update_us=1000000)
    assert context.targets == (Target(pid=1234, regions=(Region(4096, 2**20),)),)
    assert scheme.access_pattern.sz_min == 4096
    assert scheme.access_pattern.sz_max == ULONG_MAX
    assert (scheme.quota.ms, scheme.quota.bytes, scheme.quota.reset_interval_ms) == (10, 128 * 2**20, 1000)
    assert scheme.quota.weights == QuotaWeights(nr_accesses_permil=500)
    assert scheme.filters == (Filter("addr", addr_start=0, addr_end=2 * 2**20),)


def test_same_document_in_every_format() -> None:
    data = yaml.safe_load(EXAMPLE_YAML)
    expected = load_config(EXAMPLE_YAML, "yaml")
    assert load_config(json.dumps(data), "json") == expected
    import tomli_w

    assert load_config(tomli_w.dumps(data), "toml") == expected


@pytest.mark.parametrize(
    ("data", "field", "fragment"),
    [
        (_doc(nr_regions={"min": 2}), "kdamonds[0].contexts[0].nr_regions.min", "at least 3"),
        (
            _doc(intervals={"sample_us": "fast"}),
            "kdamonds[0].contexts[0].intervals.sample_us",
            "expected an integer or a duration like '5ms'",
        ),
        (_doc(intervals={"sample_us": 1.5}), "kdamonds[0].contexts[0].intervals.sample_us", "expected an integer"),
        (
            _doc(intervals={"sample_us": "200ms"}),
            "kdamonds[0].contexts[0].intervals.sample_us",
            "must not exceed aggr_us",
        ),
        (_doc(nr_regions={"min": True}), "kdamonds[0].contexts[0].nr_regions.min", "expected an integer"),
        (_doc(nr_regions={"min": "5ms"}), "kdamonds[0].contexts[0].nr_regions.min", "expected an integer"),
        (_doc(nr_regions=[]), "kdamonds[0].contexts[0].nr_regions", "expected a mapping"),
        (_doc(bogus=1), "kdamonds[0].contexts[0].bogus", "unknown key"),
        (_doc(ops="paddr", bogus=1, nr_regions={"min": 1}), "kdamonds[0].contexts[0].bogus", "unknown key"),
        (_doc(targets={"pid": 1}), "kdamonds[0].contexts[0].targets", "expected a list"),
        (_doc(targets="12"), "kdamonds[0].contexts[0].targets", "expected a list"),
        (
            _doc(targets=[{"pid": 1, "regions": [{"start": 0}]}]),
            "kdamonds[0].contexts[0].targets[0].regions[0].end",
            "required",
        ),
        (_doc(targets=[{"pid": 1}, {}]), "kdamonds[0].contexts[0].targets[1].pid", "give the pid"),
        (_doc(targets=[{"pid": "12"}, {"pid": "x"}]), "kdamonds[0].contexts[0].targets[1].pid", "expected an integer"),
        (
            _doc(targets=[{"pid": 1, "regions": [{"start": 0, "end": 10}, {"start": 5, "end": 20}]}]),
            "kdamonds[0].contexts[0].targets[0].regions[1].start",
            "sort the regions",
        ),
        (
            _doc(schemes=[{}, {"filters": [{"type": "memcg"}]}]),
            "kdamonds[0].contexts[0].schemes[1].filters[0].memcg_path",
            "cgroup path",
        ),
        (
            _doc(schemes=[{"quota": {"weights": {"age_permil": "0.01%"}}}]),
            "kdamonds[0].contexts[0].schemes[0].quota.weights.age_permil",
            "not a whole number",
        ),
        (
            _doc(schemes=[{"quota": {"goal_tuner": 1}}]),
            "kdamonds[0].contexts[0].schemes[0].quota.goal_tuner",
            "expected a string",
        ),
        (
            _doc(schemes=[{"quota": {"goals": [{"metric": None}]}}]),
            "kdamonds[0].contexts[0].schemes[0].quota.goals[0].metric",
            "expected a string",
        ),
        (_doc(pause="yes"), "kdamonds[0].contexts[0].pause", "expected true or false"),
        ({"kdamonds": [{"contexts": [{}, {}]}]}, "kdamonds[0].contexts", "one kdamond per context"),
        ({"kdamonds": [{}, None]}, "kdamonds[1]", "expected a mapping"),
        ({"kdamonds": None}, "kdamonds", "expected a list"),
        ({"kdamond": []}, "kdamond", "valid keys are kdamonds"),
        ({1: 2}, "1", "unknown key"),
        ([], DOCUMENT, "expected a mapping"),
        (None, DOCUMENT, "expected a mapping"),
    ],
)
def test_errors_name_the_full_path(data: object, field: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict(data)
    assert info.value.field == field
    assert fragment in info.value.message


def test_access_pattern_takes_the_scheme_notation() -> None:
    scheme = {
        "access_pattern": {
            "sz_min": "4KiB",
            "sz_max": "max",
            "nr_accesses_min": "3%",
            "nr_accesses_max": "10%",
            "age_min": "5s",
            "age_max": "7",
        }
    }
    config = config_from_dict(_doc(intervals={"sample_us": "3ms", "aggr_us": "3s"}, schemes=[{}, scheme]))
    pattern = config.kdamonds[0].contexts[0].schemes[1].access_pattern
    # at most 1000 accesses: 3% is 30; 5 s is 2 aggregations of 3 s (a lower bound rounds up)
    assert (pattern.sz_min, pattern.sz_max) == (4096, ULONG_MAX)
    assert (pattern.nr_accesses_min, pattern.nr_accesses_max, pattern.age_min, pattern.age_max) == (30, 100, 2, 7)


@pytest.mark.parametrize(
    ("context", "field", "fragment"),
    [
        (
            {"schemes": [{}, {"access_pattern": {"age_min": "5 parsecs"}}]},
            "kdamonds[0].contexts[0].schemes[1].access_pattern.age_min",
            "unknown unit 'parsecs'",
        ),
        (
            {"schemes": [{"access_pattern": {"nr_accesses_max": "5ms"}}]},
            "kdamonds[0].contexts[0].schemes[0].access_pattern.nr_accesses_max",
            "a percentage like '10%'",
        ),
        (
            {"intervals": {"sample_us": "200ms"}, "schemes": [{"access_pattern": {"age_min": "5s"}}]},
            "kdamonds[0].contexts[0].intervals.sample_us",
            "must not exceed aggr_us",
        ),
        (
            {"schemes": [{"access_pattern": {"age_mni": "5s"}}]},
            "kdamonds[0].contexts[0].schemes[0].access_pattern.age_mni",
            "unknown key",
        ),
    ],
)
def test_access_pattern_errors_name_the_full_path(context: dict[str, Any], field: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict(_doc(**context))
    assert info.value.field == field
    assert fragment in info.value.message


def test_digit_strings_are_integers() -> None:
    config = config_from_dict(_doc(nr_regions={"min": "5", "max": "18446744073709551615"}))
    assert config.kdamonds[0].contexts[0].nr_regions.max == ULONG_MAX


@pytest.mark.parametrize(
    ("text", "fmt", "fragment"),
    [
        ("{", "json", "not valid JSON"),
        ("a: [", "yaml", "not valid YAML"),
        ("a = ", "toml", "not valid TOML"),
        ("[" * 100000, "json", "nested too deeply"),
        ("{}", "xml", "unknown format 'xml'"),
    ],
)
def test_document_errors(text: str, fmt: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(text, fmt)
    assert info.value.field == DOCUMENT
    assert fragment in info.value.message


def test_empty_document_is_a_config_without_kdamonds() -> None:
    assert load_config("{}", "json") == Config()
    assert load_config("", "toml") == Config()


def _sample_config() -> Config:
    return Config(
        kdamonds=(
            Kdamond(
                contexts=(
                    Context(targets=(Target(pid=42, regions=(Region(0, 4096),)),), schemes=(Scheme(action="cold"),)),
                )
            ),
            Kdamond(
                contexts=(
                    Context(ops="paddr", targets=(Target(),), schemes=(Scheme(quota=Quota(goal_tuner="consist")),)),
                )
            ),
        )
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_dump_then_load(fmt: str) -> None:
    config = _sample_config()
    assert load_config(dump_config(config, fmt), fmt) == config


def test_dump_leaves_out_none_and_keeps_everything_else() -> None:
    data = config_to_dict(_sample_config())
    vaddr_target = data["kdamonds"][0]["contexts"][0]["targets"][0]
    paddr_target = data["kdamonds"][1]["contexts"][0]["targets"][0]
    assert vaddr_target == {"pid": 42, "regions": [{"start": 0, "end": 4096}], "obsolete": False}
    assert "pid" not in paddr_target
    assert "goal_tuner" not in data["kdamonds"][0]["contexts"][0]["schemes"][0]["quota"]
    assert data["kdamonds"][1]["contexts"][0]["schemes"][0]["quota"]["goal_tuner"] == "consist"
    assert data["kdamonds"][0]["contexts"][0]["intervals"]["sample_us"] == 5000


def test_toml_dump_keeps_integers_within_64_bit_signed() -> None:
    text = dump_config(_sample_config(), "toml")
    pattern = tomllib.loads(text)["kdamonds"][0]["contexts"][0]["schemes"][0]["access_pattern"]
    assert pattern["sz_max"] == str(ULONG_MAX)
    assert pattern["nr_accesses_max"] == 2**32 - 1
    assert (
        json.loads(dump_config(_sample_config(), "json"))["kdamonds"][0]["contexts"][0]["schemes"][0]["access_pattern"][
            "sz_max"
        ]
        == ULONG_MAX
    )


@pytest.mark.parametrize(
    ("name", "fmt"), [("c.json", "json"), ("c.yaml", "yaml"), ("c.YML", "yaml"), ("c.toml", "toml")]
)
def test_load_config_file_by_suffix(tmp_path: Path, name: str, fmt: str) -> None:
    path = tmp_path / name
    path.write_text(dump_config(_sample_config(), fmt), encoding="utf-8")
    assert load_config_file(path) == _sample_config()
    assert load_config_file(str(path)) == _sample_config()


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("c.ini", b"", "from its suffix"),
        ("c.json", b"\xff\xfe{", "not UTF-8"),
    ],
)
def test_load_config_file_errors(tmp_path: Path, name: str, content: bytes, fragment: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_config_file(path)
    assert info.value.field == DOCUMENT
    assert fragment in info.value.message


def test_an_unreadable_config_file_raises_its_os_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as missing:
        load_config_file(tmp_path / "missing.json")
    assert missing.value.filename == str(tmp_path / "missing.json")
    with pytest.raises(IsADirectoryError) as directory:
        load_config_file(tmp_path)
    assert directory.value.filename == str(tmp_path)
