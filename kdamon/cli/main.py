"""The ``kdamon`` command: parses arguments and dispatches to one module per command group.

Command modules import the library lazily inside their handlers, so that
``kdamon status`` does not pay for the engine or matplotlib.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from typing import TextIO

from kdamon import __version__
from kdamon.errors import ConfigError, KdamonError, KdamonWarning

# Each command's module; a module's register(subparsers) adds its commands with a `handler` default.
COMMANDS = {
    "start": "kdamon.cli.control",
    "stop": "kdamon.cli.control",
    "tune": "kdamon.cli.control",
    "status": "kdamon.cli.status",
    "show": "kdamon.cli.show",
    "top": "kdamon.cli.show",
    "record": "kdamon.cli.record",
    "report": "kdamon.cli.report",
    "module": "kdamon.cli.module",
    "exporter": "kdamon.cli.exporter",
    "vm": "kdamon.cli.vm",
    "check": "kdamon.cli.check",
    "completion": "kdamon.cli.completion",
}


GRAMMAR = """the command line:
  durations take units: 500us, 5ms, 30s, 10m, 1h, 1m30s; a plain number is
       seconds (--duration 30), except for DAMON's intervals (--sample,
       --aggr, --update, --refresh-interval), which need their unit
  --json writes JSON to standard output; an output FILE named - is
       standard output too (check --json -)
  --pid PID is the same as --target-pid PID on every command
  colours only on a terminal, never with NO_COLOR set or TERM=dumb
  kdamon completion bash|zsh prints a shell completion script

environment:
  KDAMON_SYSFS_ROOT, KDAMON_DEBUGFS_ROOT, KDAMON_TRACEFS_ROOT, KDAMON_MODULE_ROOT,
  KDAMON_STATE_DIR, KDAMON_KERNEL_CONFIG
       where every command (exporter too) finds DAMON's files and keeps its
       state, instead of the usual places
  KDAMON_CACHE  the cache of vm and check (default ~/.cache/kdamon)
  KDAMON_ACCEL  kvm or tcg: how guests run (default: KVM when it works)

"""

EXIT_CODES = """exit codes:
  0    success
  1    a runtime failure: the kernel, a process or a file refused (errors read
       "kdamon: error: PATH: REASON" for a file), or a check failed
  2    a usage error: an unknown option, a missing or bad argument or value
  130  interrupted (Ctrl-C)
  141  standard output was closed early (`kdamon status | head`)"""


def os_error_text(err: OSError) -> str:
    """``PATH: REASON`` (``PATH -> PATH2: REASON`` for a rename), or the reason alone."""
    reason = err.strerror or str(err)
    if err.filename is None:
        return reason
    where = str(err.filename) if err.filename2 is None else f"{err.filename} -> {err.filename2}"
    return f"{where}: {reason}"


class HelpFormatter(argparse.HelpFormatter):
    """argparse's, but a text of several lines (a table, a list) is kept as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def walk(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """``(command words, parser)`` for ``parser`` and every subcommand's parser below it."""
    yield parser.prog.split(" ", 1)[1] if " " in parser.prog else "", parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                yield from walk(sub)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with ``argv`` naming a command, only that command's module is imported."""
    import importlib

    parser = argparse.ArgumentParser(
        prog="kdamon",
        description="Drive Linux DAMON, or monitor with kdamon's own engine.",
        epilog=GRAMMAR + EXIT_CODES,
    )
    parser.add_argument("--version", action="version", version=f"kdamon {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    sub.required = True
    first = next((a for a in argv or () if not a.startswith("-")), None)
    modules = [COMMANDS[first]] if first in COMMANDS else list(dict.fromkeys(COMMANDS.values()))
    for name in modules:
        importlib.import_module(name).register(sub)
    for _, each in walk(parser):
        each.formatter_class = HelpFormatter
    return parser


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """kdamon's warnings as ``kdamon: MESSAGE`` lines; any other as Python shows it."""
    if issubclass(category, KdamonWarning):
        text = f"kdamon: {message}\n"
    else:
        text = warnings.formatwarning(message, category, filename, lineno, line)
    (file or sys.stderr).write(text)


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(args_list).parse_args(args_list)
    warnings.showwarning = _show_warning
    warnings.simplefilter("always", KdamonWarning)  # each is given once where it applies
    try:
        code: int = args.handler(args)
    except KdamonError as err:
        print(f"kdamon: error: {err}", file=sys.stderr)
        return 2 if isinstance(err, ConfigError) else 1
    except KeyboardInterrupt:
        print("kdamon: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`kdamon status | head`): stop quietly, as other tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except OSError as err:  # a user's path or permissions: no traceback
        print(f"kdamon: error: {os_error_text(err)}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
