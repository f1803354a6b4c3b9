"""The selftests' C helpers (``access_memory`` and the like), built on the host with ``gcc -static``.

The guest has no compiler, and its libc is not the host's, so each helper
is linked statically.  The build goes through kdamon's make driver
(:class:`kdamon.vm.build.Make`) with make's built-in rule for a program
from one C file; the selftests' own Makefile is not used, as it needs the
kernel tree around it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from kdamon.errors import GuestError

__all__ = ["build_helpers"]


def build_helpers(damon: Path, log_path: Path, say: Callable[[str], None]) -> list[Path]:
    """Each ``damon/*.c`` compiled next to it; the programs.  The compiler's output goes to ``log_path``."""
    from kdamon.vm.build import Make

    if shutil.which("gcc") is None:
        raise GuestError("building the selftests' C helpers needs gcc and a static libc: apt-get install gcc libc6-dev")
    programs = [source.with_suffix("") for source in sorted(damon.glob("*.c"))]
    if not programs:
        return []
    make = Make(
        damon, log_path, say, args=("-f", os.devnull, "CC=gcc", f"CFLAGS=-O2 -I{damon.parent}", "LDFLAGS=-static")
    )
    make.new_log()
    make.run([p.name for p in programs], "building the selftests' C helpers (gcc -static; needs libc6-dev)")
    return programs
