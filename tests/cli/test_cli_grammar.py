"""One grammar on every command: the whole parser is walked, so a command added later is held to it.

Every help renders complete (a description, help for every argument, no ``%%``
left by argparse, no pointer to a README that is not installed) with defaults
that agree with the parser and the model; durations take units; zero and
negative values are refused where they mean nothing; ``--pid`` and
``--target-pid`` are one option; every command that reports has ``--json``;
no internal command is shown (the engine daemon is a module of its own).
"""

from __future__ import annotations

import argparse
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from cli_helpers import Terminal
from kdamon.backend.engine_backend import DAEMON_MODULE
from kdamon.backend.host import ENV_VARS
from kdamon.cli import common
from kdamon.cli.arg_types import interval_ms, interval_us
from kdamon.cli.main import build_parser, main, walk
from kdamon.model import Intervals, NrRegions, parse_duration_us

PARSERS = dict(walk(build_parser()))
REPORTING = [
    "status",
    "show",
    "start",
    "report heatmap",
    "report wss",
    "report access",
    "report trace",
    "report raw",
    "module",
    "vm kernels",
]


def _arguments(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if not isinstance(a, argparse._SubParsersAction)]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``kdamon ARGV`` in this process: (exit code, stdout, stderr), a usage error included."""
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_the_walk_reaches_every_command() -> None:
    assert {
        "",
        "start",
        "stop",
        "tune",
        "status",
        "show",
        "top",
        "record",
        "report",
        "report heatmap",
        "report wss",
        "report access",
        "report trace",
        "report raw",
        "module",
        "exporter",
        "vm",
        "vm run",
        "vm image",
        "vm kernels",
        "check",
        "completion",
    } == set(PARSERS)


@pytest.mark.parametrize("words", sorted(PARSERS))
def test_every_help_is_complete(words: str) -> None:
    parser = PARSERS[words]
    text = parser.format_help()
    assert "%%" not in text and "README" not in text, text
    assert parser.description, f"`kdamon {words}` has no description"
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            listed = {choice.dest for choice in action._choices_actions}
            assert listed == set(action.choices), f"`kdamon {words}` lists {listed}, has {set(action.choices)}"
            assert all(choice.help for choice in action._choices_actions)
        else:
            name = "/".join(action.option_strings) or action.dest
            assert action.help and action.help != argparse.SUPPRESS, f"`kdamon {words}` {name}: no help"


@pytest.mark.parametrize("words", sorted(PARSERS))
def test_defaults_said_are_the_defaults(words: str) -> None:
    for action in _arguments(PARSERS[words]):
        if action.default in (None, False, argparse.SUPPRESS) or action.default == []:
            continue
        assert "default" in (action.help or "") and str(action.default) in (action.help or ""), (
            f"`kdamon {words}` {action.option_strings or action.dest}: default {action.default!r}, help {action.help!r}"
        )


def test_the_monitoring_defaults_said_are_the_models() -> None:
    helps = {a.dest: a.help or "" for a in _arguments(PARSERS["start"])}
    intervals, regions = Intervals(), NrRegions()
    for dest, us in (("sample", intervals.sample_us), ("aggr", intervals.aggr_us), ("update", intervals.update_us)):
        said = re.search(r"\(default: (\w+)\)", helps[dest])
        assert said is not None and parse_duration_us(said[1]) == us, helps[dest]
    assert f"(default: {regions.min},{regions.max})" in helps["nr_regions"]
    record = {a.dest: a.help or "" for a in _arguments(PARSERS["record"])}
    assert "(default: 1s here)" in record["update"]  # what record sets when --update is not given


def test_the_help_names_every_path_variable() -> None:
    text = build_parser().format_help()
    assert all(variable in text for variable in ENV_VARS.values())


def test_no_internal_command_is_shown(capsys: pytest.CaptureFixture[str]) -> None:
    """The engine daemon is a module of its own (``python -m kdamon.backend.engine_daemon``), not a command."""
    assert DAEMON_MODULE == "kdamon.backend.engine_daemon"
    assert not [words for words in PARSERS if any(word.startswith("_") for word in words.split())]
    code, _, err = _run(["_engine-daemon"], capsys)
    assert code == 2 and "invalid choice" in err and "_engine" not in err.split("choose from", 1)[-1]


def test_every_duration_takes_units_and_plain_seconds() -> None:
    durations = [(words, a) for words, parser in PARSERS.items() for a in _arguments(parser) if a.metavar == "DURATION"]
    assert len(durations) >= 20
    for words, action in durations:
        assert action.type is not None, f"`kdamon {words}` {action.option_strings}"
        if action.type in (interval_us, interval_ms):
            unit = 1000 if action.type is interval_us else 1
            assert action.type("1m30s") == 90_000 * unit and action.type("0") == 0
            with pytest.raises(argparse.ArgumentTypeError, match="give a unit"):
                action.type("5000")
        else:
            assert action.type("1m30s") == action.type("90") == 90_000_000
        with pytest.raises(argparse.ArgumentTypeError, match="cannot be negative"):
            action.type("-1s")
    assert not [a for parser in PARSERS.values() for a in _arguments(parser) if a.type is float]


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["record", "--duration", "0", "--pid", "1"], "argument --duration: must be longer than 0, got '0'"),
        (["show", "--timeout=-5s"], "argument --timeout: cannot be negative, got '-5s'"),
        (["top", "--timeout", "0"], "argument --timeout: must be longer than 0"),
        (["vm", "run", "--timeout", "0", "--", "true"], "argument --timeout: must be longer than 0"),
        (["check", "--kernel", "x", "--timeout", "0s"], "argument --timeout: must be longer than 0"),
        (["report", "trace", "--interval", "0", "f.kdr"], "argument --interval: must be longer than 0"),
        (["report", "access", "--at", "later", "f.kdr"], "argument --at: expected an integer or a duration"),
        (["show", "--count", "0"], "argument --count: must be positive, got '0'"),
        (["top", "--history", "0"], "argument --history: must be positive"),
        (["report", "heatmap", "--width", "0", "f.kdr"], "argument --width: must be positive"),
        (["vm", "run", "--cpus", "0", "--", "true"], "argument --cpus: must be positive"),
        (["start", "--pid", "-1"], "argument --pid/--target-pid: must be positive"),
        (["start", "--sample", "5000"], "argument --sample: give a unit, e.g. 5000us or 5000ms"),
        (["tune", "sysfs:0", "--refresh-interval", "100"], "argument --refresh-interval/--refresh: give a unit"),
        (["exporter", "--port", "70000"], "argument --port: a TCP port is at most 65535"),
        (
            ["report", "heatmap", "--png", "x.png", "--json", "f.kdr"],
            "argument --json: not allowed with argument --png",
        ),
    ],
)
def test_bad_values_are_usage_errors(argv: list[str], said: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(argv, capsys)
    assert code == 2 and said in err, err


@pytest.mark.parametrize("words", ["start", "tune", "record", "show", "top"])
def test_pid_and_target_pid_are_one_option(words: str) -> None:
    [action] = [a for a in _arguments(PARSERS[words]) if "--pid" in a.option_strings]
    assert action.option_strings == ["--pid", "--target-pid"] and action.dest == "pid"
    pre = ["0"] if words == "tune" else []
    parsed = build_parser().parse_args([words, *pre, "--target-pid", "7", "--pid", "8"])
    assert parsed.pid == [7, 8]


def test_every_pid_option_has_both_spellings() -> None:
    for words, parser in PARSERS.items():
        for action in _arguments(parser):
            if {"--pid", "--target-pid"} & set(action.option_strings):
                assert action.option_strings == ["--pid", "--target-pid"], words


@pytest.mark.parametrize("words", REPORTING)
def test_every_command_that_reports_has_json(words: str) -> None:
    [action] = [a for a in _arguments(PARSERS[words]) if a.option_strings == ["--json"]]
    assert action.nargs == 0 and (action.help or "").startswith("JSON on standard output:")


def test_vm_kernels_json(capsys: pytest.CaptureFixture[str]) -> None:
    from kdamon.vm import list_recipes

    code, out, _ = _run(["vm", "kernels", "--json"], capsys)
    assert code == 0
    assert json.loads(out) == [{"name": r.name, "kind": r.kind, "description": r.description} for r in list_recipes()]
    assert {"debian-6.12", "debian-7.3", "linux-6.1-dbgfs"} <= {entry["name"] for entry in json.loads(out)}


def test_check_json_dash_is_standard_output_and_the_tables_go_to_stderr(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from kdamon.check import host
    from kdamon.check.results import CheckResult, KernelReport, Status

    def fake(kernel: str, **_: Any) -> KernelReport:
        return KernelReport(
            kernel, (CheckResult("abi.tree", "abi.tree", Status.FAIL, "missing", 0.5, "abi"),), "x.y", "tcg", 1.0
        )

    monkeypatch.setattr(host, "check_kernel", fake)
    monkeypatch.chdir(tmp_path)
    assert main(["check", "--kernel", "debian-6.12", "--json", "-"]) == 1
    out, err = capfd.readouterr()
    assert json.loads(out)["kernels"][0]["results"][0]["status"] == "fail"
    assert "abi.tree" in err and "JSON written to standard output" in err
    assert list(tmp_path.iterdir()) == []
    assert main(["check", "--kernel", "debian-6.12", "--json", "-", "--junit", "-"]) == 2
    assert "only one of --json and --junit can go to standard output" in capfd.readouterr().err


@pytest.mark.parametrize(
    ("stream", "env", "choice", "coloured"),
    [
        (Terminal(), {}, "auto", True),
        (io.StringIO(), {}, "auto", False),
        (Terminal(), {"NO_COLOR": "1"}, "auto", False),
        (Terminal(), {"NO_COLOR": ""}, "auto", True),  # no-color.org: set and not empty
        (Terminal(), {"TERM": "dumb"}, "auto", False),
        (io.StringIO(), {"NO_COLOR": "1"}, "always", True),
        (Terminal(), {}, "never", False),
    ],
)
def test_one_colour_rule(
    stream: io.StringIO, env: dict[str, str], choice: str, coloured: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert common.use_color(stream, choice) is coloured
