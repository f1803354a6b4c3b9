"""The guest side of ``kdamon check``: run the suite (or given tests) and print results.

``python3 -m kdamon.check.guest [-k EXPR] [--selftests DIR]`` runs the
conformance suite (``kdamon/check/suite``), then the kernel's own DAMON
selftests when asked; ``--node NODEID`` runs given pytest nodes instead
(the ``damon_guest`` marker).  ``--stop-on-failure-of ID`` (repeated) ends
the run at the first bad result of one of those checks (mutant runs: the
checks that passed on the unmodified kernel).  Every result is one console line
(``kdamon.check.results``), framed by a begin and an end line.  Meant to run
in a kdamon guest; it writes DAMON files.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["SUITE_DIR", "main"]

SUITE_DIR = Path(__file__).resolve().parent / "suite"


def _pytest_args(suite: bool) -> list[str]:
    """The suite loads only kdamon's plugin (third-party ones cost seconds under TCG:
    hypothesis alone about 14 s) and ignores ini addopts; given tests run as their project says."""
    if suite:
        os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        return ["-o", "addopts=", "-p", "kdamon.pytest_plugin"]
    installed = any(ep.value.startswith("kdamon.") for ep in md.entry_points(group="pytest11"))
    return [] if installed else ["-p", "kdamon.pytest_plugin"]


def main(argv: Sequence[str] | None = None) -> int:
    from kdamon.distribution import require_extra
    from kdamon.errors import MissingExtraError

    try:
        require_extra("check", "kdamon's checks")
    except MissingExtraError as err:
        raise SystemExit(f"kdamon.check.guest: {err}") from None
    import pytest

    from kdamon.check.emit import ResultEmitter
    from kdamon.check.results import begin_line, end_line, result_line

    parser = argparse.ArgumentParser(prog="python3 -m kdamon.check.guest", description=__doc__.split("\n\n")[0])
    parser.add_argument("-k", dest="select", help="run only the checks matching this pytest -k expression")
    parser.add_argument("--node", action="append", default=[], help="run this pytest node instead of the suite")
    parser.add_argument("--rootdir", help="pytest's rootdir for --node")
    parser.add_argument("--selftests", type=Path, help="a prepared kernel selftests directory to run too")
    parser.add_argument(
        "--stop-on-failure-of",
        dest="stop_ids",
        action="append",
        default=[],
        metavar="ID",
        help="stop at the first failure or error of a check with this id (repeat for several)",
    )
    args = parser.parse_args(argv)

    # pytest captures fd 1 during tests; results go to a duplicate of the console.
    console = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    console.write(
        begin_line(
            {
                "release": platform.release(),
                "kernel": os.environ.get("KDAMON_GUEST_KERNEL", ""),
                "python": platform.python_version(),
            }
        )
        + "\n"
    )
    watched = frozenset(args.stop_ids)
    emitter = ResultEmitter(console.write, stop_after=(lambda r: r.status.bad and r.id in watched) if watched else None)
    pytest_args = ["-q", "-p", "no:cacheprovider", *_pytest_args(not args.node)]
    if args.rootdir:
        pytest_args += ["--rootdir", args.rootdir]
    if args.select:
        pytest_args += ["-k", args.select]
    pytest_args += args.node or [str(SUITE_DIR)]
    pytest.main(pytest_args, plugins=[emitter])
    results = list(emitter.results)
    if args.selftests is not None:
        from kdamon.check.selftests.guest import run_selftests

        for result in run_selftests(args.selftests):
            console.write(result_line(result) + "\n")
            results.append(result)
    console.write(end_line(len(results)) + "\n")
    console.flush()
    return 1 if any(r.status.bad for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
