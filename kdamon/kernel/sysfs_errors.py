"""Turn an ``OSError`` from a DAMON sysfs file into a ``KernelError`` that says what to do.

The hints follow the errno map of the kernel's DAMON sysfs code (6.12 to 7.3).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from kdamon.errors import FeatureMissingError, KernelError

__all__ = ["ON_EINVAL_CAUSES", "translate_os_error"]

ON_EINVAL_CAUSES = (
    "nr_contexts is not 1",
    "the operations set is not built into this kernel (see avail_operations)",
    "nr_regions min < 3 or min > max",
    "sample_us > aggr_us",
    "an inconsistent intervals_goal (aggrs != 0 needs min_sample_us <= sample_us <= max_sample_us)",
    "paddr with more than one target",
    "a vaddr/fvaddr target pid that does not exist (pids resolve in the writer's pid namespace)",
    "a region with start >= end, overlapping or unsorted regions, or one smaller than a page",
    "an addr filter with addr_end < addr_start or a hugepage_size filter with min > max",
    "a memcg_path/goal path that names no cgroup",
    "an addr_unit that makes the minimum region size not a power of two",
)

_KEYWORD_FILES = frozenset(
    {"operations", "action", "metric", "type", "target_metric", "goal_tuner"}
)


def _state_hint(err: int, keyword: str) -> str:
    if err == errno.EINVAL and keyword in ("on", "commit"):
        causes = "; ".join(ON_EINVAL_CAUSES)
        return f"the kernel rejected the configuration at '{keyword}'. Likely causes: {causes}"
    if err == errno.EINVAL and keyword == "off":
        return "the kdamond was never started; there is nothing to stop"
    if err == errno.EPERM and keyword == "off":
        return "the kdamond already exited (all its targets ended); there is nothing to stop"
    if err == errno.EINVAL:
        return (
            f"'{keyword}' needs a running kdamond with nr_contexts == 1, "
            "and a kernel that knows the keyword; check the state and start it first"
        )
    if err == errno.ECANCELED:
        return (
            f"'{keyword}' was cancelled: the kdamond exited, every scheme is deactivated by "
            "its watermarks, the context is paused, or there are no schemes"
        )
    return f"writing '{keyword}' failed"


def _hint(err: int, path: Path, written: str | None) -> str:
    name = path.name
    if name == "state" and written is not None:
        return _state_hint(err, written)
    if err in (errno.EACCES, errno.EPERM):
        return "DAMON's sysfs files need root (CAP_DAC_OVERRIDE); run kdamon as root"
    if err == errno.ENOMEM:
        return "the kernel ran out of memory building the DAMON objects; free memory and retry"
    if err != errno.EINVAL:
        return "unexpected error from DAMON's sysfs interface"
    if written is None:
        return "the file held an unexpected value"
    if name == "nr_contexts":
        return "nr_contexts accepts only 0 or 1"
    if name.startswith("nr_"):
        return f"{name} needs a non-negative integer"
    if name in _KEYWORD_FILES:
        extra = " (or the filter type does not belong to this filter layer)" if name == "type" else ""
        return f"'{written}' is not a keyword this kernel accepts for {name}{extra}"
    if name == "addr_unit":
        return "addr_unit must be at least 1"
    return f"'{written}' is out of range for {name}"


def translate_os_error(exc: OSError, path: Path, written: str | None) -> KernelError:
    """The ``KernelError`` for ``exc`` raised by reading (``written`` None) or writing ``path``."""
    err = exc.errno if exc.errno is not None else errno.EIO
    name = errno.errorcode.get(err, str(err))
    action = f"writing {written!r} to" if written is not None else "reading"
    if err == errno.ENOENT:
        return FeatureMissingError(
            f"{action} {path} failed: the file does not exist. Either the running kernel "
            "lacks this DAMON feature (it is newer than the kernel), or another process "
            "rewrote an nr_* file above it meanwhile",
            path=str(path),
            errno=err,
        )
    return KernelError(
        f"{action} {path} failed with {name} ({os.strerror(err)}): {_hint(err, path, written)}",
        path=str(path),
        errno=err,
    )
