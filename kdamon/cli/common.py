"""Helpers shared by kdamon's command modules."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from kdamon.backend.host import Host

__all__ = [
    "add_backend_option",
    "add_json_option",
    "add_pid_option",
    "make_host",
    "output_name",
    "say",
    "strip_dashes",
    "use_color",
    "write_json",
]


def make_host() -> Host:
    """The machine's DAMON at the default paths, each overridable by its ``KDAMON_*``
    variable (``KDAMON_SYSFS_ROOT``, ``KDAMON_TRACEFS_ROOT``, ``KDAMON_MODULE_ROOT``,
    ``KDAMON_STATE_DIR``, ...).  Tests replace this function."""
    from kdamon.backend.host import Host, HostPaths

    return Host(HostPaths.from_env())


def add_backend_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend",
        default="auto",
        choices=("auto", "sysfs", "debugfs", "engine"),
        help="kernel DAMON through sysfs or debugfs, or kdamon's own engine (default auto: "
        "kernel DAMON when it can serve without disturbing another user, else the "
        "engine; kdamon says which and why)",
    )


def add_pid_option(parser: argparse._ActionsContainer, what: str) -> None:
    """``--pid PID`` (repeatable; ``--target-pid`` is the same) into ``args.pid``."""
    from kdamon.cli.arg_types import count

    parser.add_argument(
        "--pid",
        "--target-pid",
        dest="pid",
        type=count(),
        action="append",
        metavar="PID",
        help=f"{what} (repeatable; --target-pid is the same)",
    )


def add_json_option(parser: argparse._ActionsContainer, what: str) -> None:
    """``--json``: what the command reports as JSON on standard output; ``what`` says its layout."""
    parser.add_argument("--json", action="store_true", help=f"JSON on standard output: {what}")


def write_json(document: object) -> None:
    """One JSON document (indented) on standard output."""
    import json

    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")


def use_color(stream: TextIO, choice: str = "auto") -> bool:
    """Whether to write ANSI colours to ``stream``: ``always``, ``never``, or (``auto``) only on
    a terminal, and not when ``NO_COLOR`` is set (https://no-color.org) or ``TERM`` is ``dumb``."""
    if choice != "auto":
        return choice == "always"
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and not os.environ.get("NO_COLOR") and not dumb_terminal()


def dumb_terminal() -> bool:
    """Whether ``TERM`` is ``dumb`` (a serial console, a log): no colours, no line rewritten in place."""
    return os.environ.get("TERM", "") == "dumb"


def output_name(path: Path) -> str:
    """How to name an output file the user gave: ``-`` is standard output."""
    from kdamon.userfiles import STDOUT

    return "standard output" if path == STDOUT else str(path)


def say(message: str) -> None:
    """A line for the user on standard error."""
    print(f"kdamon: {message}", file=sys.stderr, flush=True)


def strip_dashes(cmd: list[str]) -> list[str]:
    """``argparse.REMAINDER`` keeps the ``--`` that introduces a command: drop it."""
    return cmd[1:] if cmd and cmd[0] == "--" else cmd
