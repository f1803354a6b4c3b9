"""Whether this process runs inside a kdamon QEMU guest."""

from __future__ import annotations

import os

__all__ = ["in_guest"]


def in_guest() -> bool:
    """Whether this process runs inside a kdamon QEMU guest (``KDAMON_GUEST=1``), whose DAMON is the caller's own.

    Anywhere else the host's DAMON, tracefs and debugfs belong to someone else: tests leave them alone.
    """
    return os.environ.get("KDAMON_GUEST") == "1"  # set by kdamon.vm.runner
