"""How much of a change to Linux 6.1's mm/damon/core.c the ``kdamon check`` suite catches.

Runs ``kdamon check --mutants`` on the linux-6.1-dbgfs source (Debian's
linux-source-6.1, which kdamon fetches and caches) with a fixed sample of
mutants of mm/damon/core.c, and prints: the score (killed / (killed +
survived)), each outcome, the survivors' lines, the time per mutant (build,
check), and the wall time of the unmodified kernel's full check (the
baseline run).  Long: about an hour on two cores under TCG, so it is not
part of the test scripts.  ``--json FILE`` also writes the whole report.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from kdamon.check.mutation import MutantStatus, mutation_table
from kdamon.check.mutation_run import check_mutants
from kdamon.check.results import Status

COUNT = 32
SEED = 1
FILE = "mm/damon/core.c"

# Survivors of this sample shown equivalent in Linux 6.1 by reading the code (no build folds them
# away, but no run can tell them apart): (line, mutated line) -> why.  The score leaves them out.
EQUIVALENT_BY_ARGUMENT = {
    (269, "quota->total_charged_sz = 0;", ";"): "every caller passes a zero-initialised damos_quota",
    (273, "quota->charged_from = 0;", ";"): "every caller passes a zero-initialised damos_quota",
    (612, "int i, err = 0;", "int i, err = 1;"): "damon_stop() overwrites err for every context; every caller "
    "passes one",
    (745, "unsigned long sz_applied = 0;", "unsigned long sz_applied = 1;"): "always overwritten: every "
    "operations set has apply_scheme",
    (1160, "if (usecs > 20 * USEC_PER_MSEC)", "if (usecs > 19 * USEC_PER_MSEC)"): "only which timer a sleep "
    "of 19-20 ms uses",
}


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=COUNT, help=f"mutants (default {COUNT})")
    parser.add_argument("--seed", type=int, default=SEED, help=f"seed (default {SEED})")
    parser.add_argument("--json", type=Path, help="also write the whole report here")
    args = parser.parse_args()
    started = time.monotonic()
    report = check_mutants(None, [FILE], count=args.count, seed=args.seed, progress=_say)
    wall = time.monotonic() - started
    print(mutation_table(report, width=160))
    print()
    built = [o for o in report.outcomes if o.status is not MutantStatus.NOT_BUILT]
    booted = [o for o in built if o.status is not MutantStatus.EQUIVALENT]
    baseline = report.baseline
    print(f"{FILE} of {report.source}: {len(report.outcomes)} mutants, seed {report.seed}")
    print(f"score: {report.score:.1%}" if report.score is not None else "score: none (nothing booted)")
    argued = [
        (o, why)
        for o in report.outcomes
        if o.status is MutantStatus.SURVIVED
        and (why := EQUIVALENT_BY_ARGUMENT.get((o.mutant.line, o.mutant.original.strip(), o.mutant.mutated.strip())))
    ]
    killed = sum(o.status is MutantStatus.KILLED for o in report.outcomes)
    survived = sum(o.status is MutantStatus.SURVIVED for o in report.outcomes) - len(argued)
    for o, why in argued:
        print(f"  line {o.mutant.line} survived, equivalent by argument: {why}")
    if killed + survived:
        print(
            f"score without the {len(argued)} equivalent by argument: {killed / (killed + survived):.1%} "
            f"({killed} of {killed + survived} killed; target 90%)"
        )
    print(
        f"full check of the unmodified kernel: {baseline.elapsed_s:.0f} s wall ({baseline.accel}), "
        f"{baseline.count(Status.PASS)} checks passed"
    )
    if built:
        print(
            f"per built mutant: build {statistics.mean(o.build_s for o in built):.0f} s (median "
            f"{statistics.median(o.build_s for o in built):.0f} s)"
        )
    if booted:
        print(
            f"per booted mutant: check {statistics.mean(o.check_s for o in booted):.0f} s (median "
            f"{statistics.median(o.check_s for o in booted):.0f} s; the suite stops at the first failure)"
        )
    print(f"baseline build {report.baseline_build_s:.0f} s; total {wall / 60:.1f} min")
    if args.json is not None:
        args.json.write_text(json.dumps(report.to_dict(), indent=1) + "\n")


if __name__ == "__main__":
    main()
