"""The ``kdamon`` command: parses arguments and dispatches to one module per command group.

Command modules import the library lazily inside their handlers, so that
``kdamon status`` does not pay for the engine or matplotlib.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from kdamon import __version__
from kdamon.errors import KdamonError

# Each command's module; a module's register(subparsers) adds its commands with a `handler` default.
COMMANDS = {
    "start": "kdamon.cli.control",
    "stop": "kdamon.cli.control",
    "tune": "kdamon.cli.control",
    "_engine-daemon": "kdamon.cli.control",
    "status": "kdamon.cli.status",
    "show": "kdamon.cli.show",
    "top": "kdamon.cli.show",
    "record": "kdamon.cli.record",
    "report": "kdamon.cli.report",
    "module": "kdamon.cli.module",
    "exporter": "kdamon.cli.exporter",
    "vm": "kdamon.cli.vm",
    "check": "kdamon.cli.check",
}


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with ``argv`` naming a command, only that command's module is imported."""
    import importlib

    parser = argparse.ArgumentParser(prog="kdamon", description="Drive Linux DAMON, or monitor with kdamon's own engine.")
    parser.add_argument("--version", action="version", version=f"kdamon {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    first = next((a for a in argv or () if not a.startswith("-")), None)
    modules = [COMMANDS[first]] if first in COMMANDS else list(dict.fromkeys(COMMANDS.values()))
    for name in modules:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(args_list).parse_args(args_list)
    try:
        code: int = args.handler(args)
    except KdamonError as err:
        print(f"kdamon: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kdamon: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`kdamon status | head`): stop quietly, as other tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    return code


if __name__ == "__main__":
    sys.exit(main())
