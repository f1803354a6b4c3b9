"""The host side of ``kdamon check``: boot a kernel, run checks in it, read the results.

The guest runs ``python3 -m kdamon.check.guest`` and prints one line per
check on the console (``results``); this module collects them from the
runner's console stream, so that the results of a guest that crashes or
times out half-way are kept.  Two checks are the host's own:
``kernel.no_warn_bug`` (the guest kernel printed no BUG, WARNING, Oops or
panic: the runner raises ``GuestCrash`` when it did) and ``suite.complete``
(every result the guest announced arrived).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path

from kdamon.check.results import (
    CheckResult,
    ConsoleResults,
    KernelReport,
    Status,
    parse_console,
)
from kdamon.distribution import require_extra
from kdamon.errors import GuestCrash, GuestError, GuestTimeout, MissingExtraError

__all__ = ["GUEST_COMMAND", "check_kernel", "default_cpus", "run_nodes_in_guest"]

GUEST_COMMAND = ("python3", "-m", "kdamon.check.guest")
# An overloaded TCG host can make the kernel's boot-time IO-APIC timer check panic.
GUEST_CMDLINE = ("no_timer_check",)
LineSink = Callable[[str], None]
Progress = Callable[[str], None]


class _Collector:
    def __init__(self, output: LineSink | None) -> None:
        self.lines: list[str] = []
        self.output = output

    def __call__(self, line: str) -> None:
        self.lines.append(line)
        if self.output is not None:
            self.output(line)


def default_cpus(kernel: str, progress: Progress | None = None) -> int:
    """Two vCPUs under KVM, one under TCG.

    Multi-threaded TCG runs vCPUs in parallel but does not always invalidate
    code that another vCPU patches live (jump labels, static calls, which
    tracing toggles): a stale int3 then crashes the guest ("Oops: int3").
    One vCPU avoids it; DAMON itself needs only one.
    """
    from kdamon.vm.accel import choose_accel
    from kdamon.vm.kernels import cache_dir
    from kdamon.vm.resolve import resolve_kernel

    vmlinuz = resolve_kernel(kernel, progress=progress).vmlinuz
    return 2 if choose_accel(vmlinuz, cache_dir()) == "kvm" else 1


def _boot(
    command: Sequence[str],
    *,
    kernel: str,
    share: Sequence[Path],
    timeout: float,
    output: LineSink | None,
    progress: Progress | None,
    cmdline: Sequence[str] = (),
    cpus: int | None = None,
) -> tuple[ConsoleResults, GuestCrash | GuestTimeout | None, str, float, int | None]:
    """Run ``command`` in a guest; ``(console results, crash or timeout, accel, seconds, exit code)``.

    The guest runs pytest with the host's packages: without the ``check``
    extra installed, MissingExtraError says so before anything boots.
    """
    from kdamon.vm import run

    require_extra("check", "running kdamon's checks in a guest")
    if cpus is None:
        cpus = default_cpus(kernel, progress)
    collect = _Collector(output)
    started = time.monotonic()
    accel, exit_code = "", None
    stopped: GuestCrash | GuestTimeout | None = None
    try:
        result = run(
            command,
            kernel=kernel,
            share=share,
            timeout=timeout,
            output=collect,
            progress=progress,
            cmdline=(*GUEST_CMDLINE, *cmdline),
            cpus=cpus,
        )
        accel, exit_code = result.accel, result.exit_code
    except (GuestCrash, GuestTimeout) as err:
        stopped = err
    elapsed = time.monotonic() - started
    return parse_console(collect.lines), stopped, accel, elapsed, exit_code


def _crash_check(stopped: GuestCrash | GuestTimeout | None) -> CheckResult:
    """``kernel.no_warn_bug``: failed by a crash, undecided after a timeout."""
    check_id, title = "kernel.no_warn_bug", "the kernel printed no BUG, WARNING, Oops or panic during the run"
    if isinstance(stopped, GuestCrash):
        return CheckResult(check_id, title, Status.FAIL, str(stopped), group="kernel")
    if isinstance(stopped, GuestTimeout):
        return CheckResult(check_id, title, Status.ERROR, f"undecided: {stopped}", group="kernel")
    return CheckResult(check_id, title, Status.PASS, group="kernel")


def _completeness(console: ConsoleResults, exit_code: int | None) -> CheckResult:
    title = "the guest reported every check it ran"
    problems = []
    if not console.began:
        problems.append("the guest never started the suite")
    if not console.ended:
        problems.append(f"the guest stopped after {len(console.results)} results without finishing")
    elif console.expected_count != len(console.results):
        problems.append(f"the guest announced {console.expected_count} results, {len(console.results)} arrived")
    if console.garbled:
        problems.append(
            f"{len(console.garbled)} result lines were garbled on the console, e.g. {console.garbled[0][:200]!r}"
        )
    if exit_code not in (0, 1, None):
        problems.append(f"the guest command exited with {exit_code}")
    status = Status.ERROR if problems else Status.PASS
    return CheckResult("suite.complete", title, status, "; ".join(problems), group="suite")


def check_kernel(
    kernel: str,
    *,
    select: str | None = None,
    selftests: Path | None = None,
    timeout: float = 1200.0,
    cmdline: Sequence[str] = (),
    cpus: int | None = None,
    stop_on_failure_of: Collection[str] = (),
    output: LineSink | None = None,
    progress: Progress | None = None,
) -> KernelReport:
    """Boot ``kernel`` (a vm-images recipe or a bzImage path) and run the suite in it.

    ``select`` is a pytest ``-k`` expression; ``selftests`` a directory
    prepared by :func:`kdamon.check.selftests.prepare.prepare` to run as well;
    ``cpus`` None means :func:`default_cpus`; the suite stops at the first
    failure or error of a check in ``stop_on_failure_of``.
    """
    command = list(GUEST_COMMAND)
    if select:
        command += ["-k", select]
    for check_id in sorted(stop_on_failure_of):
        command += ["--stop-on-failure-of", check_id]
    share: list[Path] = []
    if selftests is not None:
        command += ["--selftests", str(selftests)]
        share.append(selftests)
    console, stopped, accel, elapsed, exit_code = _boot(
        command,
        kernel=kernel,
        share=share,
        timeout=timeout,
        output=output,
        progress=progress,
        cmdline=cmdline,
        cpus=cpus,
    )
    from kdamon.check.selftests.limits import apply_limits

    results = (*apply_limits(console.results, accel), _crash_check(stopped), _completeness(console, exit_code))
    return KernelReport(
        kernel=kernel,
        results=results,
        release=str(console.info.get("release", "")),
        accel=accel,
        elapsed_s=elapsed,
    )


def run_nodes_in_guest(
    nodes: Mapping[str, str], *, rootdir: Path, kernel: str, timeout: float
) -> dict[str, CheckResult]:
    """Run pytest nodes in one guest booted from ``kernel``; each node's result by its check id.

    ``nodes`` maps the id that a node's result carries
    (:func:`kdamon.check.emit.check_identity`) to its pytest target
    (``/abs/path/test_x.py::test_y[a]``); ``rootdir`` is shared into the
    guest and is pytest's rootdir there.  Results that arrived before a crash
    or timeout are kept; every other node gets an error saying why it has none.
    """
    command = [*GUEST_COMMAND, "--rootdir", str(rootdir)]
    for target in nodes.values():
        command += ["--node", target]
    try:
        console, stopped, _accel, _elapsed, exit_code = _boot(
            command, kernel=kernel, share=[rootdir], timeout=timeout, output=None, progress=None
        )
    except (GuestError, MissingExtraError) as err:
        return {i: CheckResult(i, i, Status.ERROR, f"the guest could not run the tests: {err}") for i in nodes}
    if stopped is not None:
        why = f"the guest stopped before this test's result: {stopped}"
    else:
        others = "; ".join(f"{r.id}: {r.message}" for r in console.results if r.id not in nodes)
        why = "; ".join(
            filter(
                None,
                [
                    "the guest printed no result line for this test",
                    others and f"it reported instead {others}",
                    _completeness(console, exit_code).message,
                ],
            )
        )
    arrived = {r.id: r for r in console.results if r.id in nodes}
    return {i: arrived.get(i) or CheckResult(i, i, Status.ERROR, why) for i in nodes}
