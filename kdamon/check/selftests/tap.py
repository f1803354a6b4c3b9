"""``run_kselftest.sh``'s TAP output turned into check results."""

from __future__ import annotations

import re
from collections.abc import Iterable

from kdamon.check.results import CheckResult, Status

__all__ = ["parse_tap"]

_RESULT = re.compile(r"^(ok|not ok) \d+ selftests: damon: (\S+)(?: # (.*))?$")


def parse_tap(lines: Iterable[tuple[float, str]]) -> list[CheckResult]:
    """Results of ``run_kselftest.sh`` output, given as ``(monotonic time, line)``."""
    results: list[CheckResult] = []
    output: list[str] = []
    last: float | None = None
    for stamp, line in lines:
        if last is None:
            last = stamp
        m = _RESULT.match(line.strip())
        if m is None:
            if line.startswith("# ") and not line.startswith(
                ("# selftests: ", "# timeout set", "# overriding timeout")
            ):
                output.append(line[2:].strip())
            continue
        verdict, test, directive = m.group(1), m.group(2), (m.group(3) or "").strip()
        if directive.upper().startswith("SKIP"):
            status = Status.SKIP
        else:
            status = Status.PASS if verdict == "ok" else Status.FAIL
        tail = " / ".join(line for line in output[-3:] if line)
        message = "" if status is Status.PASS else "; ".join(filter(None, [directive, tail]))
        if status is Status.SKIP and not message:
            message = "skipped by the test (exit 4)"
        results.append(
            CheckResult(
                f"selftests.{test}", f"kernel selftest damon/{test}", status, message, stamp - last, group="selftests"
            )
        )
        output, last = [], stamp
    return results
