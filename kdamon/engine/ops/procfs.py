"""Reading a process's memory layout and access bits from procfs.

Every function takes the procfs root so that tests can use a fake tree.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import attrs

from kdamon.errors import EngineError

__all__ = [
    "CLEAR_REFS_ALL",
    "CLEAR_REFS_SOFT_DIRTY",
    "Vma",
    "clear_refs",
    "process_alive",
    "read_maps",
    "read_smaps",
]

CLEAR_REFS_ALL = 1
"""``/proc/PID/clear_refs`` value clearing the referenced/young bits of every page."""
CLEAR_REFS_SOFT_DIRTY = 4
"""``/proc/PID/clear_refs`` value clearing the soft-dirty bits (write-protects every page)."""

_GATE_AREAS = ("[vsyscall]",)
"""Shown in maps but not VMAs of the process (the kernel's VMA walk never sees them)."""


@attrs.frozen
class Vma:
    """One mapping of ``/proc/PID/smaps``."""

    start: int
    end: int
    name: str = ""
    referenced_kib: int = 0
    flags: frozenset[str] = frozenset()


def _read(path: Path, pid: int) -> str:
    try:
        return path.read_text()
    except FileNotFoundError as error:
        raise EngineError(f"process {pid} does not exist (no {path}); start it first or give a live pid") from error
    except PermissionError as error:
        raise EngineError(
            f"cannot read {path}: monitoring another user's process needs root (or CAP_SYS_PTRACE)"
        ) from error


def _parse_range(field: str) -> tuple[int, int]:
    start, _, end = field.partition("-")
    return int(start, 16), int(end, 16)


def read_maps(pid: int, proc_root: Path = Path("/proc")) -> list[tuple[int, int]]:
    """The process's VMAs ``[start, end)`` in address order (gate areas left out)."""
    ranges: list[tuple[int, int]] = []
    for line in _read(proc_root / str(pid) / "maps", pid).splitlines():
        fields = line.split(maxsplit=5)
        if not fields or (len(fields) == 6 and fields[5].strip() in _GATE_AREAS):
            continue
        ranges.append(_parse_range(fields[0]))
    return ranges


def read_smaps(pid: int, proc_root: Path = Path("/proc")) -> list[Vma]:
    """Every VMA with its ``Referenced:`` size and ``VmFlags:`` (gate areas left out)."""
    vmas: list[Vma] = []
    header: tuple[int, int, str] | None = None
    referenced = 0
    for line in _read(proc_root / str(pid) / "smaps", pid).splitlines():
        if line.startswith("Referenced:"):
            referenced = int(line.split()[1])
        elif line.startswith("VmFlags:"):
            if header is not None and header[2] not in _GATE_AREAS:
                vmas.append(Vma(header[0], header[1], header[2], referenced, frozenset(line.split()[1:])))
            header = None
        elif line[:1] in "0123456789abcdef" and "-" in line.split(maxsplit=1)[0]:
            fields = line.split(maxsplit=5)
            start, end = _parse_range(fields[0])
            header = (start, end, fields[5].strip() if len(fields) == 6 else "")
            referenced = 0
    return vmas


def clear_refs(pid: int, value: int, proc_root: Path = Path("/proc")) -> None:
    """Write ``value`` to ``/proc/PID/clear_refs``."""
    path = proc_root / str(pid) / "clear_refs"
    try:
        fd = os.open(path, os.O_WRONLY)
    except FileNotFoundError as error:
        raise EngineError(f"process {pid} does not exist (no {path})") from error
    except PermissionError as error:
        raise EngineError(f"cannot write {path}: clearing another process's access bits needs root") from error
    try:
        os.write(fd, f"{value}\n".encode())
    except OSError as error:
        if error.errno == errno.ESRCH:
            return  # the process is exiting; target_valid will notice
        raise EngineError(f"writing {value} to {path} failed ({error.strerror})") from error
    finally:
        os.close(fd)


def process_alive(pid: int, proc_root: Path = Path("/proc")) -> bool:
    """True while the process exists and is not a zombie (a zombie has no memory)."""
    try:
        stat = (proc_root / str(pid) / "stat").read_text()
    except OSError:
        return False
    state = stat.rpartition(")")[2].split()[:1]
    return state not in (["Z"], ["X"])
