"""Run a command confined as a systemd unit's sandboxing settings would (guest tests; the guests run no systemd).

    python3 confine.py [--rw PATH]... [--proc OPTIONS] [--no-caps] -- PROG ARGS...

In a mount namespace of its own: every mount read-only (ProtectSystem=strict with
ProtectKernelTunables=yes: /sys and its tracefs and debugfs included) but /dev,
/proc and the ``--rw`` paths (ReadWritePaths=); /proc mounted again with
``--proc`` options (ProtectProc=, ProcSubset=); then, with ``--no-caps``, an empty
capability bounding set (CapabilityBoundingSet=) and no new privileges
(NoNewPrivileges=yes) before PROG is executed as root.  Seccomp and address
filters are not emulated.
"""

from __future__ import annotations

import argparse
import ctypes
import os
from pathlib import Path

CLONE_NEWNS = 0x20000
MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 32, 4096, 16384, 1 << 18
PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 24, 38

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = [None if s is None else s.encode() for s in (source, target, fstype, data)]
    _check(_libc.mount(enc[0], enc[1], enc[2], ctypes.c_ulong(flags), enc[3]), f"mount {target}")


def _mount_points() -> list[str]:
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return sorted(set(points), key=lambda p: (p.count("/"), p))


def confine(rw: list[str], proc_options: str | None, no_caps: bool) -> None:
    last_cap = int(Path("/proc/sys/kernel/cap_last_cap").read_text())  # before /proc is mounted again
    _check(_libc.unshare(CLONE_NEWNS), "unshare")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    for point in _mount_points():
        if point.startswith(("/dev", "/proc")):
            continue
        _mount(None, point, None, MS_REMOUNT | MS_BIND | MS_RDONLY)
    for path in rw:
        if Path(path).exists():
            _mount(path, path, None, MS_BIND)  # a bind mount of its own (read-only, as its source)...
            _mount(None, path, None, MS_REMOUNT | MS_BIND)  # ...made writable
    if proc_options is not None:
        _mount("proc", "/proc", "proc", 0, proc_options)
    if no_caps:
        for cap in range(last_cap + 1):
            _check(_libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), f"dropping capability {cap}")
        _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no new privileges")
        status = Path("/proc/self/status").read_text()
        assert "CapInh:\t0000000000000000" in status and "CapAmb:\t0000000000000000" in status, status


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rw", action="append", default=[])
    parser.add_argument("--proc")
    parser.add_argument("--no-caps", action="store_true")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    confine(args.rw, args.proc, args.no_caps)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
