"""Bundled workloads whose access pattern is known: hot/cold, stairs, zigzag, stripes.

Each runs as its own process (``python3 -m kdamon.check.workloads KIND``)
so that DAMON can monitor it by pid.  It maps its areas (one anonymous
mapping per area, a guard page between them so they stay apart), writes
every page once, measures how long one pass over its hot part takes, prints
its :class:`Layout` as one JSON line, then keeps writing:

* ``hot_cold``: area 0 (hot) all the time, area 1 (cold) never;
* ``stairs``: area ``i`` during step ``i``, then the next one, cycling;
* ``zigzag``: like stairs, but back and forth (0 1 2 3 2 1 0 ...);
* ``stripes``: the even areas all the time, the odd ones never.

The process runs at nice 5 so that a monitor on the same CPUs keeps up.

Only the standard library is used: a strided ``mmap`` slice assignment
writes one byte per page in C, fast enough under TCG emulation.
:func:`start` forks one from the calling process (no interpreter start-up,
which takes seconds under TCG) and returns a :class:`Workload` handle.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import mmap
import os
import select
import signal
import sys
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Self

import attrs

from kdamon.errors import KdamonError

__all__ = ["KINDS", "Layout", "Workload", "main", "start"]

KINDS = ("hot_cold", "stairs", "zigzag", "stripes")
PAGE = mmap.PAGESIZE
_START_TIMEOUT_S = 60.0


@attrs.frozen
class Layout:
    """Where a running workload keeps its areas and how its pattern goes."""

    kind: str
    pid: int
    areas: tuple[tuple[int, int], ...]  # [start, end) of each area, in area order
    step_s: float  # how long each stairs/zigzag step lasts (0 for hot_cold and stripes)
    t0: float  # time.monotonic() when the pattern started
    pass_us: float  # measured time of one write pass over one area (stripes: over every written area)

    @property
    def span(self) -> tuple[int, int]:
        """The smallest range that covers every area."""
        return min(a[0] for a in self.areas), max(a[1] for a in self.areas)

    def sequence(self) -> tuple[int, ...]:
        """The order in which areas are hot, one per step, repeating."""
        n = len(self.areas)
        if self.kind == "zigzag" and n > 1:
            return tuple(range(n)) + tuple(range(n - 2, 0, -1))
        return tuple(range(n))

    def hot_areas(self, now: float) -> tuple[int, ...]:
        """Every area being written at monotonic time ``now``."""
        if self.kind == "stripes":
            return tuple(range(0, len(self.areas), 2))
        return (self.hot_area(now),)

    def hot_area(self, now: float) -> int:
        """The (first) area being written at monotonic time ``now``."""
        if self.kind in ("hot_cold", "stripes"):
            return 0
        seq = self.sequence()
        return seq[int(max(0.0, now - self.t0) // self.step_s) % len(seq)]

    def step_phase(self, now: float) -> float:
        """How far into its current step the pattern is at ``now`` (0 to 1)."""
        if self.step_s <= 0:
            return 0.0
        return (max(0.0, now - self.t0) % self.step_s) / self.step_s

    def to_json(self) -> str:
        return json.dumps(attrs.asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Layout:
        data = json.loads(text)
        data["areas"] = tuple((int(a), int(b)) for a, b in data["areas"])
        return cls(**data)


class _Areas:
    """The mapped areas of this process, with guard pages in between."""

    def __init__(self, sizes: Sequence[int]) -> None:
        sizes = [-(-s // PAGE) * PAGE for s in sizes]
        if not sizes or min(sizes) <= 0:
            raise KdamonError("every workload area needs at least one page; give sizes like 8MiB")
        total = sum(sizes) + PAGE * (len(sizes) - 1)
        self.map = mmap.mmap(-1, total, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        base = ctypes.addressof(ctypes.c_char.from_buffer(self.map))
        libc = ctypes.CDLL(None, use_errno=True)
        self.offsets: list[tuple[int, int]] = []
        off = 0
        for i, size in enumerate(sizes):
            self.offsets.append((off, off + size))
            off += size
            if i + 1 < len(sizes):
                if libc.mprotect(ctypes.c_void_p(base + off), ctypes.c_size_t(PAGE), 0) != 0:
                    raise KdamonError(f"mprotect of a guard page failed: {os.strerror(ctypes.get_errno())}")
                off += PAGE
        self.base = base
        self._ones = {size: b"\x01" * (size // PAGE) for size in set(sizes)}
        for i in range(len(sizes)):
            self.touch(i)

    def ranges(self) -> tuple[tuple[int, int], ...]:
        return tuple((self.base + a, self.base + b) for a, b in self.offsets)

    def touch(self, index: int) -> None:
        """Write one byte in every page of area ``index``."""
        a, b = self.offsets[index]
        self.map[a:b:PAGE] = self._ones[b - a]


def _pass_us(areas: _Areas, indices: Sequence[int]) -> float:
    passes, t = 0, time.monotonic()
    while passes < 3 or time.monotonic() - t < 0.2:
        for index in indices:
            areas.touch(index)
        passes += 1
    return (time.monotonic() - t) * 1e6 / passes


def _run(kind: str, sizes: Sequence[int], step_s: float, seconds: float, out: int) -> None:
    """Set the areas up, write the layout line to file descriptor ``out``, then loop."""
    os.nice(5)  # a busy loop: let the monitor (kdamond, trace reader) have the CPU when they need it
    areas = _Areas(sizes)
    written = tuple(range(0, len(sizes), 2)) if kind == "stripes" else (0,)
    layout = Layout(kind, os.getpid(), areas.ranges(), step_s if kind in ("stairs", "zigzag") else 0.0, 0.0,
                    _pass_us(areas, written))
    t0 = time.monotonic()
    layout = attrs.evolve(layout, t0=t0)
    os.write(out, (layout.to_json() + "\n").encode())
    deadline = t0 + seconds if seconds > 0 else float("inf")
    while (now := time.monotonic()) < deadline:
        for index in layout.hot_areas(now):
            areas.touch(index)


def _size(text: str) -> int:
    """Bytes, or a size with a unit ("8MiB"); plain numbers avoid importing the model (slow under TCG)."""
    if text.isdigit():
        return int(text)
    from kdamon.model.units import parse_size

    return parse_size(text, "size")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one workload as a program (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python3 -m kdamon.check.workloads", description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--sizes", nargs="+", type=_size,
                        help="area sizes (default: hot_cold 8MiB 64MiB; stripes 12 x 1MiB; else 4 x 4MiB)")
    parser.add_argument("--step", type=float, default=1.0, help="seconds per stairs/zigzag step (default 1)")
    parser.add_argument("--seconds", type=float, default=0.0, help="stop after this long (default: run until killed)")
    args = parser.parse_args(argv)
    try:
        _run(args.kind, args.sizes or _default_sizes(args.kind), args.step, args.seconds, sys.stdout.fileno())
    except KdamonError as err:
        parser.exit(2, f"{parser.prog}: {err}\n")
    return 0


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)


def _default_sizes(kind: str) -> list[int]:
    if kind == "stripes":
        return [1 << 20] * 12
    return [8 << 20, 64 << 20] if kind == "hot_cold" else [4 << 20] * 4


class Workload:
    """A running workload process; use as a context manager (it is killed and reaped on exit)."""

    def __init__(self, pid: int, layout: Layout) -> None:
        self.pid = pid
        self.layout = layout
        self._reaped = False

    def stop(self) -> None:
        """Kill and reap the process (an unreaped zombie keeps a vaddr kdamond alive)."""
        if not self._reaped:
            _kill(self.pid)
            self._reaped = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def start(kind: str, *, sizes: Sequence[int] = (), step_s: float = 1.0, seconds: float = 0.0) -> Workload:
    """Fork workload ``kind`` and wait until its areas are mapped and written."""
    if kind not in KINDS:
        raise KdamonError(f"unknown workload {kind!r}; choose one of {', '.join(KINDS)}")
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child never returns into the caller's code
        code = 1
        try:
            os.close(read_fd)
            _run(kind, list(sizes) or _default_sizes(kind), step_s, seconds, write_fd)
            code = 0
        except Exception as err:  # noqa: BLE001 - the parent sees no layout line; this says why
            os.write(2, f"kdamon workload {kind}: {err}\n".encode())
        finally:
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        ready, _, _ = select.select([pipe], [], [], _START_TIMEOUT_S)
        line = pipe.readline() if ready else b""
    if not line:
        _kill(pid)
        raise KdamonError(f"the {kind} workload did not start within {_START_TIMEOUT_S:g} s (see its error above)")
    return Workload(pid, Layout.from_json(line.decode()))


if __name__ == "__main__":
    raise SystemExit(main())
