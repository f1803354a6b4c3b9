"""``kdamon completion bash|zsh``: the shell completion script, generated from kdamon's own parser.

The script comes from the same parser that parses the command line (through
shtab), so it offers exactly kdamon's commands, options and choices; options
that take a path complete file names (directory names for a directory).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

SHELLS = ("bash", "zsh")


def register(sub: Any) -> None:
    completion = sub.add_parser(
        "completion",
        help="print a shell completion script (bash or zsh)",
        description="Print the completion script of SHELL, generated from kdamon's parser. Load it in the "
        'running shell with `source <(kdamon completion bash)`, or in zsh with `eval "$(kdamon '
        'completion zsh)"` after compinit; or install it: `kdamon completion bash > '
        "/usr/share/bash-completion/completions/kdamon`, `kdamon completion zsh > "
        "/usr/local/share/zsh/site-functions/_kdamon` (a directory of zsh's fpath).",
    )
    completion.add_argument("shell", choices=SHELLS, metavar="SHELL", help="bash or zsh")
    completion.set_defaults(handler=_completion)


def _is_directory(action: argparse.Action) -> bool:
    return any(word in (action.metavar or "") for word in ("DIR", "TREE"))


def mark_paths(parser: argparse.ArgumentParser) -> None:
    """Have shtab complete file names (directory names) for every argument that takes a path."""
    import shtab

    from kdamon.cli.main import walk

    for _, each in walk(parser):
        for action in each._actions:
            if action.type is Path:
                action.complete = shtab.DIRECTORY if _is_directory(action) else shtab.FILE  # type: ignore[attr-defined]


def _short_descriptions(parser: argparse.ArgumentParser) -> None:
    """Describe each command by its one-line help (shtab offers descriptions to zsh's menu)."""
    from kdamon.cli.main import walk

    for _, each in walk(parser):
        for action in each._actions:
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    action.choices[choice.dest].description = choice.help


def completion_script(shell: str) -> str:
    """The completion script of ``shell`` for every command of the parser."""
    import shtab

    from kdamon.cli.main import build_parser

    parser = build_parser()  # a parser of its own: the changes below are for the script only
    mark_paths(parser)
    _short_descriptions(parser)
    script: str = shtab.complete(parser, shell=shell)
    return script


def _completion(args: argparse.Namespace) -> int:
    sys.stdout.write(completion_script(args.shell))
    return 0
