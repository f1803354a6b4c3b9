"""Raw sysfs writes for guest tests: how another tool (not kdamon) drives DAMON."""

from __future__ import annotations

import os
from pathlib import Path


def raw_write(path: Path, value: str) -> None:
    """One ``write(2)`` of ``value``, as the kernel wants it; raises OSError."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)
