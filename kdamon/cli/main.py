"""The ``kdamon`` command: parses arguments and dispatches to one module per command group.

Command modules import the library lazily inside their handlers, so that
``kdamon status`` does not pay for the engine or matplotlib.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from kdamon import __version__
from kdamon.errors import KdamonError

# Command group modules; each has register(subparsers) that sets `handler` defaults.
COMMAND_MODULES = ("kdamon.cli.vm",)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(prog="kdamon", description="Drive Linux DAMON, or monitor with kdamon's own engine.")
    parser.add_argument("--version", action="version", version=f"kdamon {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except KdamonError as err:
        print(f"kdamon: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kdamon: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
