"""Shell completion (``kdamon completion bash|zsh``) and the man page (``scripts/manpage.py``) come
from the parser itself: every command and option is in them, and the shells really complete."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kdamon.cli.completion import completion_script
from kdamon.cli.main import build_parser, walk

CHECKOUT = Path(__file__).resolve().parents[2]
PARSERS = dict(walk(build_parser()))
OPTIONS = sorted(
    {option for parser in PARSERS.values() for action in parser._actions for option in action.option_strings}
)


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_the_script_names_every_command_and_option(shell: str) -> None:
    script = completion_script(shell)
    for words in PARSERS:
        for word in words.split():
            assert word in script, f"{shell}: `kdamon {words}`"
    for option in OPTIONS:
        assert option in script, f"{shell}: {option}"
    assert "_engine-daemon" not in script


def _bash_completes(line: str, env: dict[str, str]) -> list[str]:
    """What bash offers for ``line`` (the word under the cursor is the last one), through the script."""
    words = line.split(" ")
    program = (
        f"source <({sys.executable} -m kdamon completion bash)\n"
        f"COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}\n"
        f"COMP_LINE={line!r}; COMP_POINT={len(line)}\n"
        '_shtab_kdamon; printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", program], env=env, capture_output=True, text=True, check=True
    )
    return sorted(filter(None, done.stdout.splitlines()))


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """``kdamon`` on PATH running this checkout (from a directory holding no other kdamon)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kdamon").write_text(f'#!/bin/sh\nexec {sys.executable} -m kdamon "$@"\n')
    (bin_dir / "kdamon").chmod(0o755)
    monkeypatch.chdir(tmp_path)
    return dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", PYTHONPATH=str(CHECKOUT), TERM="xterm")


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize(
    ("line", "offered"),
    [
        ("kdamon sh", ["show"]),
        ("kdamon report h", ["heatmap"]),
        ("kdamon report heatmap --color ", ["always", "auto", "never"]),
        ("kdamon start --target", ["--target-pid"]),
        ("kdamon record --refresh", ["--refresh", "--refresh-interval"]),
        ("kdamon completion ", ["bash", "zsh"]),
        ("kdamon _eng", []),
    ],
)
def test_bash_completes(line: str, offered: list[str], env: dict[str, str]) -> None:
    assert _bash_completes(line, env) == offered


def _tmux_completes(
    shell: list[str], setup: str, typed: str, expected: str, tmp_path: Path, env: dict[str, str]
) -> None:
    """Type ``typed`` and a Tab in ``shell`` in a terminal, after ``setup``; wait for a line ending
    in ``expected``."""
    socket = str(tmp_path / "tmux.sock")

    def tmux(*argv: str) -> str:
        return subprocess.run(["tmux", "-S", socket, *argv], capture_output=True, text=True, check=True, env=env).stdout

    def wait_for(done: Callable[[list[str]], bool]) -> None:
        deadline = time.monotonic() + 60
        while not done([line.rstrip() for line in tmux("capture-pane", "-p").splitlines()]):
            assert time.monotonic() < deadline, tmux("capture-pane", "-p")
            time.sleep(0.2)

    try:
        tmux("new-session", "-d", "-c", str(tmp_path), "-x", "150", "-y", "30", " ".join(shell))
        tmux("send-keys", f"{setup} && echo completion-loaded", "Enter")
        wait_for(lambda lines: "completion-loaded" in lines)
        tmux("send-keys", typed, "Tab")
        wait_for(lambda lines: any(line.endswith(expected) for line in lines))
    finally:
        subprocess.run(["tmux", "-S", socket, "kill-server"], capture_output=True, env=env)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux (apt-get install tmux)")
def test_bash_in_a_terminal(tmp_path: Path, env: dict[str, str]) -> None:
    _tmux_completes(
        ["bash", "--norc", "--noprofile"],
        "source <(kdamon completion bash)",
        "kdamon sh",
        "# kdamon show",
        tmp_path,
        env,
    )


@pytest.mark.skipif(
    shutil.which("tmux") is None or shutil.which("zsh") is None, reason="needs tmux and zsh (apt-get install tmux zsh)"
)
def test_zsh_in_a_terminal(tmp_path: Path, env: dict[str, str]) -> None:
    _tmux_completes(
        ["zsh", "-f"],
        'autoload -U compinit && compinit -u && eval "$(kdamon completion zsh)"',
        "kdamon report heatmap --color ",
        "always  auto    never",
        tmp_path,
        env,
    )


def test_the_man_page_tells_every_command_and_option(tmp_path: Path) -> None:
    pytest.importorskip("argparse_manpage", reason="needs argparse-manpage (kdamon's man extra)")
    page = tmp_path / "kdamon.1"
    subprocess.run(
        [sys.executable, str(CHECKOUT / "scripts" / "manpage.py"), "-o", str(page)],
        check=True,
        env=dict(os.environ, SOURCE_DATE_EPOCH="0"),
    )
    roff = page.read_text()
    assert roff.startswith('.TH KDAMON "1" "1970\\-01\\-01" "kdamon ')
    for words in filter(None, PARSERS):
        assert f"\\fBkdamon {words}\\fR" in roff, f"`kdamon {words}`"
    for option in set(OPTIONS) - {"-h", "--help"}:
        assert option.replace("-", "\\-") in roff, option
    assert "action=pageout,sz=4K\\-max" in roff and "quota_goal_tuner=NAME" in roff  # the --scheme keys
    assert "exit codes:" in roff and "a plain number is" in roff
    assert "%%" not in roff and "README" not in roff and "_engine\\-daemon" not in roff
    if shutil.which("groff"):
        rendered = subprocess.run(
            ["groff", "-man", "-Tutf8", "-ww", str(page)], capture_output=True, text=True, check=True
        )
        assert rendered.stderr == "" and "drive Linux DAMON, or monitor with kdamon's own engine" in rendered.stdout


def test_the_walk_sees_actions_as_argparse_does() -> None:
    """The subcommands' parsers are found once each, under their full command words."""
    assert all(parser.prog == f"kdamon {words}".strip() for words, parser in PARSERS.items())
    assert all(isinstance(parser, argparse.ArgumentParser) for parser in PARSERS.values())
