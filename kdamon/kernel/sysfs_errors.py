"""Turn an ``OSError`` from a DAMON sysfs file into a ``KernelError`` that says what to do.

The hints follow the errno map of the kernel's DAMON sysfs code (6.12 to 7.3); each file's own
hints are in the schema (``sysfs_schema``).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from kdamon.errors import FeatureMissingError, KernelError
from kdamon.kernel.sysfs_nodes import File, walk
from kdamon.kernel.sysfs_schema import ADMIN, ON_EINVAL_CAUSES

__all__ = ["ON_EINVAL_CAUSES", "translate_os_error"]


def _by_name() -> dict[str, File]:
    """Every file of the schema by name; where names repeat, the one with its own hints."""
    found: dict[str, File] = {}
    for placed in walk(ADMIN):
        node = placed.node
        if isinstance(node, File) and (node.name not in found or (node.hints and not found[node.name].hints)):
            found[node.name] = node
    return found


_FILES = _by_name()


def _hint(err: int, path: Path, written: str | None) -> str:
    name = path.name
    known = _FILES.get(name, File(name, kind="count" if name.startswith("nr_") else "int"))
    if known.kind == "state" and written is not None:
        return known.hint(err, written) or f"writing '{written}' failed"
    if err in (errno.EACCES, errno.EPERM):
        return "DAMON's sysfs files need root (CAP_DAC_OVERRIDE); run kdamon as root"
    if err == errno.ENOMEM:
        return "the kernel ran out of memory building the DAMON objects; free memory and retry"
    if err != errno.EINVAL:
        return "unexpected error from DAMON's sysfs interface"
    if written is None:
        return "the file held an unexpected value"
    return known.hint(err, written) or "unexpected error from DAMON's sysfs interface"


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
