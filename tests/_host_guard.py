"""Host safety net: no host test may open the host's DAMON, tracefs or debugfs files.

The machine's own kdamond belongs to its infrastructure; reading `state` even
takes DAMON's global lock.  An audit hook sees every open() of the process
(builtins.open, io.open, os.open); on the host, an open under a guarded
prefix raises at once and fails the running test in its teardown, so even
code that swallows the exception cannot hide it.  Inside a kdamon guest
(KDAMON_GUEST=1) the hook is not installed: there DAMON is the test's own.
"""

from __future__ import annotations

import os
import sys

from kdamon.testing.guest import in_guest

GUARDED = ("/sys/kernel/mm/damon", "/sys/kernel/tracing", "/sys/kernel/debug")
violations: list[str] = []


class HostDamonAccess(RuntimeError):
    """A host test opened a guarded path."""


def _guard(event: str, args: tuple[object, ...]) -> None:
    if event != "open" or not args:
        return
    path = args[0]
    if isinstance(path, bytes):
        path = path.decode(errors="replace")
    if not isinstance(path, str):
        return
    real = os.path.realpath(path) if not path.startswith(GUARDED) else path
    if real.startswith(GUARDED):
        violations.append(real)
        raise HostDamonAccess(
            f"host test opened {real}: host DAMON, tracefs and debugfs are off limits (use a tmp_path tree or a guest test)"
        )


if not in_guest():
    sys.addaudithook(_guard)
