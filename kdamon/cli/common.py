"""Helpers shared by kdamon's command modules."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kdamon.backend.host import Host

__all__ = ["add_backend_option", "make_host", "say", "strip_dashes"]


def make_host() -> Host:
    """The machine's DAMON at the default paths, each overridable by its ``KDAMON_*``
    variable (``KDAMON_SYSFS_ROOT``, ``KDAMON_TRACEFS_ROOT``, ``KDAMON_MODULE_ROOT``,
    ``KDAMON_STATE_DIR``, ...).  Tests replace this function."""
    from kdamon.backend.host import Host, HostPaths

    return Host(HostPaths.from_env())


def add_backend_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", default="auto", choices=("auto", "sysfs", "debugfs", "engine"),
                        help="kernel DAMON through sysfs or debugfs, kdamon's own engine, or auto "
                             "(kernel DAMON when it can serve without disturbing another user, else the "
                             "engine; kdamon says which and why)")


def say(message: str) -> None:
    """A line for the user on standard error."""
    print(f"kdamon: {message}", file=sys.stderr, flush=True)


def strip_dashes(cmd: list[str]) -> list[str]:
    """``argparse.REMAINDER`` keeps the ``--`` that introduces a command: drop it."""
    return cmd[1:] if cmd and cmd[0] == "--" else cmd
