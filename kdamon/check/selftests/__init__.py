"""The kernel's own DAMON selftests (``tools/testing/selftests/damon``), run in the check's guest.

Host side (:func:`prepare`): take the tests from the Debian ``linux-source``
package of the kernel's version (:mod:`.debian`, through kdamon's private
apt configuration), build their C helpers with ``gcc -static``
(:mod:`.helpers`), write the ``kselftest-list.txt`` that
``run_kselftest.sh`` reads, and pack the tools the tests need that the
guest's busybox lacks or gets wrong (:mod:`.tools`).

Guest side (:func:`run_selftests`, :mod:`.guest`): put those tools where the
scripts look, run ``run_kselftest.sh -c damon`` and turn its TAP lines into
check results (:mod:`.tap`).  Back on the host, :func:`apply_limits`
(:mod:`.limits`) turns failures that only reflect the guest into skips that
say why.  See ``docs/kernel-selftests.md`` of the shared documentation for
the requirements.
"""

from kdamon.check.selftests.guest import run_selftests
from kdamon.check.selftests.limits import MISSING_IN_GUEST, TIMING_DEPENDENT, apply_limits
from kdamon.check.selftests.prepare import listed_tests, prepare
from kdamon.check.selftests.tap import parse_tap

__all__ = [
    "MISSING_IN_GUEST",
    "TIMING_DEPENDENT",
    "apply_limits",
    "listed_tests",
    "parse_tap",
    "prepare",
    "run_selftests",
]
