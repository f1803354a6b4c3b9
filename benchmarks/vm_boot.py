"""Boot to the first guest command: kdamon's runner, and virtme-ng (vng) on the same kernel where it runs.

Prints the median of N boots (default 5) for each, and the ratio.  The time is
from the start of the run call to the guest command's first output line.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import time

from kdamon.vm import resolve_kernel, run

MARK = "kdamon-bench-first-command"
# vng 1.42 booting the same kernel for a trivial command on this machine type, where it
# could be made to run (a Rust virtiofsd, depmod; see shared/docs/guest-notes.md).
VNG_MEASURED_S = (11.6, 16.6)


def kdamon_boot(kernel: str) -> float:
    start = time.monotonic()
    seen: list[float] = []

    def out(line: str) -> None:
        if MARK in line and not seen:
            seen.append(time.monotonic() - start)

    result = run(["echo", MARK], kernel=kernel, output=out, timeout=300)
    if result.exit_code != 0 or not seen:
        raise SystemExit(f"kdamon boot failed: exit {result.exit_code}, log {result.console_log}")
    return seen[0]


def vng_boot(vmlinuz: str) -> float | str:
    vng = shutil.which("vng")
    if vng is None:
        return "not installed (pip install virtme-ng)"
    start = time.monotonic()
    done = subprocess.run(
        [vng, "--run", vmlinuz, "--disable-kvm", "--verbose", "--", "echo", MARK],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if MARK not in done.stdout:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return f"does not run here ({tail[0][:120]})"
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kernel", default="debian-6.12")
    parser.add_argument("-n", type=int, default=5)
    args = parser.parse_args()
    kernel = resolve_kernel(args.kernel)
    kdamon_boot(args.kernel)  # warm the image cache
    ours = [kdamon_boot(args.kernel) for _ in range(args.n)]
    print(f"kernel {kernel.name} ({kernel.version}), TCG unless KVM works here, {args.n} boots each")
    print(f"kdamon vm run: median {statistics.median(ours):.2f} s  (min {min(ours):.2f}, max {max(ours):.2f})")
    first = vng_boot(str(kernel.vmlinuz))
    if isinstance(first, str):
        low, high = VNG_MEASURED_S
        print(f"vng: {first}")
        print(
            f"ratio kdamon/vng against vng's {low}-{high} s measured on this machine type "
            f"(shared/docs/guest-notes.md): {statistics.median(ours) / high:.2f}-"
            f"{statistics.median(ours) / low:.2f} (goal <= 0.5)"
        )
        return
    theirs = [first] + [float(vng_boot(str(kernel.vmlinuz))) for _ in range(args.n - 1)]
    print(f"vng --run:     median {statistics.median(theirs):.2f} s  (min {min(theirs):.2f}, max {max(theirs):.2f})")
    print(f"ratio kdamon/vng: {statistics.median(ours) / statistics.median(theirs):.2f} (goal <= 0.5)")


if __name__ == "__main__":
    main()
