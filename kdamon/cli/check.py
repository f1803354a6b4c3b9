"""``kdamon check``: boot kernels, run kdamon's DAMON conformance suite in each, report and compare."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kdamon.check import DEFAULT_MUTANT_FILES
from kdamon.cli.arg_types import count, duration
from kdamon.cli.common import output_name

if TYPE_CHECKING:
    from kdamon.check.results import KernelReport


def register(sub: Any) -> None:
    p = sub.add_parser(
        "check",
        help="run kdamon's DAMON conformance suite on kernels in QEMU guests and compare them",
        description="Boot each kernel under QEMU, run kdamon's DAMON conformance suite in it (ABI presence by "
        "version, state keywords, errnos, monitoring of bundled workloads, region ages and adaptation, DAMOS "
        "actions, access patterns, quotas, watermarks, DAMON modules, debugfs, tracepoints, invariants and a "
        "differential check against kdamon's engine, kernel WARN/BUG), print a table per kernel and, with "
        "several kernels, what changed against the first one.  Exits 1 when any check fails.  --mutants "
        "measures instead how many small mutants of a tree's DAMON code the suite catches.",
    )
    p.add_argument(
        "--kernel",
        action="append",
        default=[],
        metavar="NAME|PATH",
        help="a kernel recipe (`kdamon vm kernels`) or a bzImage path; repeat to compare kernels, "
        "the first one is the baseline",
    )
    p.add_argument(
        "--source",
        type=Path,
        metavar="LINUX_TREE",
        help="configure (tinyconfig + the DAMON fragment of vm-images), build out of tree (with ccache "
        "when installed) and check this kernel source tree, after the --kernel ones",
    )
    p.add_argument(
        "--build-dir",
        type=Path,
        metavar="DIR",
        help="where --source builds (default: a directory in kdamon's cache named after the tree)",
    )
    p.add_argument(
        "--junit", type=Path, metavar="FILE", help="write JUnit XML (one testsuite per kernel); - for standard output"
    )
    p.add_argument(
        "--json",
        type=Path,
        metavar="FILE",
        help="write every result with its timing, and the comparisons, as JSON; - for standard output "
        "(the tables then go to standard error)",
    )
    p.add_argument(
        "--selftests",
        action="store_true",
        help="also run the kernel's own tools/testing/selftests/damon from the matching Debian "
        "linux-source package in the same guest",
    )
    p.add_argument("-k", dest="select", metavar="EXPR", help="run only the checks matching this pytest -k expression")
    p.add_argument(
        "--timeout",
        type=duration(),
        default="25m",
        metavar="DURATION",
        help="how long one kernel's guest may run before it is killed (default 25m; plain numbers are seconds)",
    )
    p.add_argument("--cpus", type=count(), metavar="N", help="guest vCPUs (default: 2 under KVM, 1 under TCG)")
    p.add_argument("--verbose", action="store_true", help="stream each guest's console")
    p.add_argument("--all", dest="show_all", action="store_true", help="list every check, not only the failing ones")
    m = p.add_argument_group("mutation testing", "how much of a change to DAMON's code the suite would catch")
    m.add_argument(
        "--mutants",
        action="store_true",
        help="build small mutants of the DAMON files of --source (default: the linux-6.1-dbgfs source "
        "that kdamon fetches), boot each and run the suite; report each as killed, survived, "
        "equivalent or not built, and the score",
    )
    m.add_argument(
        "--files",
        default=",".join(DEFAULT_MUTANT_FILES),
        metavar="FILE,...",
        help=f"the C files to mutate, relative to the tree (default {','.join(DEFAULT_MUTANT_FILES)})",
    )
    m.add_argument("--count", type=count(), default=10, metavar="N", help="mutants per file (default 10)")
    m.add_argument("--seed", type=int, default=1, metavar="S", help="the seed that picks the mutants (default 1)")
    p.set_defaults(handler=_check)


def _say(message: str) -> None:
    print(message if message.startswith("kdamon:") else f"kdamon: {message}", file=sys.stderr, flush=True)


def _stream(line: str) -> None:
    sys.stderr.write(line)
    sys.stderr.flush()


def _kernels(args: argparse.Namespace) -> list[str]:
    from kdamon.errors import ConfigError

    kernels = list(args.kernel)
    if args.source is not None:
        from kdamon.check.source import build_tree

        kernels.append(str(build_tree(args.source, build_dir=args.build_dir, progress=_say)))
    if not kernels:
        raise ConfigError(
            "--kernel",
            "name a kernel to check: --kernel debian-6.12 (kdamon vm kernels lists them), "
            "--kernel PATH/TO/bzImage, or --source LINUX_TREE",
        )
    return kernels


def _with_selftests(kernel: str, args: argparse.Namespace) -> tuple[Path | None, str]:
    """The prepared selftests directory for ``kernel``, or why there is none."""
    from kdamon.check.selftests import prepare
    from kdamon.errors import KdamonError

    try:
        return prepare(kernel, progress=_say), ""
    except KdamonError as err:
        return None, str(err)


def _run_one(kernel: str, args: argparse.Namespace) -> KernelReport:
    import attrs

    from kdamon.check.host import check_kernel
    from kdamon.check.results import CheckResult, Status

    selftests, why = _with_selftests(kernel, args) if args.selftests else (None, "")
    _say(f"checking {kernel}")
    report = check_kernel(
        kernel,
        select=args.select,
        selftests=selftests,
        timeout=args.timeout / 1e6,
        cpus=args.cpus,
        output=_stream if args.verbose else None,
        progress=_say,
    )
    if why:
        missing = CheckResult(
            "selftests.prepare", "the kernel's DAMON selftests were prepared", Status.ERROR, why, group="selftests"
        )
        report = attrs.evolve(report, results=(*report.results, missing))
    return report


def _mutants(args: argparse.Namespace) -> int:
    from kdamon.check.mutation import mutation_table
    from kdamon.check.mutation_run import check_mutants
    from kdamon.errors import ConfigError

    if args.kernel or args.selftests:
        raise ConfigError(
            "--mutants",
            "mutants are built from --source (or the linux-6.1-dbgfs source); leave out --kernel and --selftests",
        )
    files = [f.strip() for f in args.files.split(",") if f.strip()]
    report = check_mutants(
        args.source,
        files,
        count=args.count,
        seed=args.seed,
        select=args.select,
        timeout=args.timeout,
        cpus=args.cpus,
        build_dir=args.build_dir,
        output=_stream if args.verbose else None,
        progress=_say,
    )
    print(mutation_table(report, width=shutil.get_terminal_size((120, 24)).columns), flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(report.to_dict(), indent=1) + "\n")
        _say(f"JSON written to {args.json}")
    return 0


def _check(args: argparse.Namespace) -> int:
    if args.mutants:
        return _mutants(args)
    from kdamon.check.compare import compare
    from kdamon.check.render import comparison_table, results_table
    from kdamon.check.report import to_json, to_junit
    from kdamon.errors import ConfigError
    from kdamon.userfiles import STDOUT, ensure_writable, write_replacing

    if args.junit == args.json == STDOUT:
        raise ConfigError("--json", "only one of --json and --junit can go to standard output (-)")
    for out in (args.junit, args.json):
        if out is not None:
            ensure_writable(out)  # before the guests run, not after
    tables = sys.stderr if STDOUT in (args.junit, args.json) else sys.stdout
    width = shutil.get_terminal_size((120, 24)).columns
    reports = []
    for kernel in _kernels(args):
        report = _run_one(kernel, args)
        reports.append(report)
        print(results_table(report, width=width, failures_only=not args.show_all), file=tables, flush=True)
        print(file=tables, flush=True)
    comparisons = [compare(reports[0], other) for other in reports[1:]]
    for comparison in comparisons:
        print(comparison_table(comparison, width=width), file=tables)
        print(file=tables)
    if args.junit is not None:
        write_replacing(args.junit, to_junit(reports))
        _say(f"JUnit XML written to {output_name(args.junit)}")
    if args.json is not None:
        write_replacing(args.json, json.dumps(to_json(reports, comparisons), indent=1) + "\n")
        _say(f"JSON written to {output_name(args.json)}")
    return 0 if all(r.ok for r in reports) else 1
