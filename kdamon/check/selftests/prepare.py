"""The selftests of a kernel's version made ready to share into its guest, once (cached).

``<cache>/selftests/<major>.<minor>-<Debian version>/`` holds ``kst/`` (the
selftests' damon directory with its C helpers built, the kselftest runner
and the ``kselftest-list.txt`` it reads) and ``tools/`` (the host tools the
tests need, with their libraries).  It is assembled in a ``.tmp`` sibling
and renamed into place when complete.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

from kdamon.check.selftests.debian import extract, source_deb
from kdamon.check.selftests.helpers import build_helpers
from kdamon.check.selftests.tools import pack_tools
from kdamon.errors import GuestError

__all__ = ["listed_tests", "prepare"]

Progress = Callable[[str], None]


def listed_tests(makefile: str) -> list[str]:
    """``TEST_PROGS`` of the damon selftests' Makefile, in order."""
    text = makefile.replace("\\\n", " ")
    progs: list[str] = []
    for m in re.finditer(r"^TEST_PROGS\s*\+?=\s*(.*)$", text, re.MULTILINE):
        progs += m.group(1).split()
    return progs


def prepare(kernel: str, *, progress: Progress | None = None) -> Path:
    """A directory with the selftests of ``kernel``'s version, ready to share into its guest (cached)."""
    from kdamon.check.abi import parse_release
    from kdamon.vm.kernels import cache_dir
    from kdamon.vm.resolve import resolve_kernel

    say = progress or (lambda _m: None)
    release = resolve_kernel(kernel, progress=say).version
    try:
        major, minor = parse_release(release)
    except ValueError as err:
        raise GuestError(f"{kernel}: {err}; the selftests are taken from the linux-source of that version") from err
    deb, source_version = source_deb(kernel, f"{major}.{minor}", say)
    target = cache_dir() / "selftests" / f"{major}.{minor}-{source_version}"
    if (target / ".complete").exists():
        return target
    say(f"kdamon: preparing the DAMON selftests of linux-source-{major}.{minor} {source_version}")
    staging = target.with_name(target.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    extract(deb, staging / "kst")
    build_helpers(staging / "kst" / "damon", staging / "helpers.log", say)
    makefile = (staging / "kst" / "damon" / "Makefile").read_text()
    (staging / "kst" / "kselftest-list.txt").write_text("".join(f"damon:{t}\n" for t in listed_tests(makefile)))
    pack_tools(staging / "tools")
    (staging / ".complete").write_text(f"{deb.name}\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target
