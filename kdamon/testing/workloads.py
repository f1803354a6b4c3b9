"""Workload processes whose memory access pattern is known: hot/cold, stairs, zigzag, stripes.

A workload maps its areas (:class:`~kdamon.testing.areas.Areas`), writes
every page once, measures how long one pass over its hot part takes, gives
its :class:`~kdamon.testing.layout.Layout`, then keeps writing (or reading)
its hot areas as its kind says (:data:`~kdamon.testing.layout.KINDS`).

:func:`start` forks one from the calling process (no interpreter start-up,
which takes seconds under TCG) and returns a :class:`Workload` handle; it
runs at nice 5, so that a kdamond and a trace reader on the same CPUs keep
up (``kdamon check`` relies on that).  As a
program, so that a monitor can start it::

    python3 -m kdamon.testing.workloads KIND [--sizes SIZE...] [--step S] [--seconds S]
        [--uffd] [--read] [--layout FILE] [--children N [--fork-after S | --fork-on-sigusr1]]

it prints its layout as one JSON line, or writes it to ``FILE`` once its
areas are set up.  With ``--children N`` it forks N children after
``--fork-after`` seconds (or N more at each ``SIGUSR1``), each with areas of
its own (the same kind and sizes, new mappings) until the end; child ``i``
writes its layout to ``FILE.child<i>`` (:func:`child_layout_path`).  The
parent reaps them before it exits.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import attrs

from kdamon.errors import KdamonError
from kdamon.testing.areas import PAGE, Areas
from kdamon.testing.layout import KINDS, Layout

__all__ = ["KINDS", "PAGE", "Layout", "Workload", "child_layout_path", "main", "start"]

_START_TIMEOUT_S = 60.0


@attrs.frozen
class _Spec:
    """What a workload process does."""

    kind: str
    sizes: tuple[int, ...]
    step_s: float = 1.0
    uffd: bool = False
    write: bool = True


def _default_sizes(kind: str) -> tuple[int, ...]:
    if kind == "stripes":
        return (1 << 20,) * 12
    return (8 << 20, 64 << 20) if kind == "hot_cold" else (4 << 20,) * 4


def _pass_us(areas: Areas, indices: Sequence[int], write: bool) -> float:
    passes, t = 0, time.monotonic()
    while passes < 3 or time.monotonic() - t < 0.2:
        for index in indices:
            areas.touch(index, write=write)
        passes += 1
    return (time.monotonic() - t) * 1e6 / passes


def _set_up(spec: _Spec) -> tuple[Areas, Layout]:
    """Map and write the areas, measure a pass; the layout starts its pattern now."""
    areas = Areas(spec.sizes, uffd=spec.uffd)
    accessed = tuple(range(0, len(spec.sizes), 2)) if spec.kind == "stripes" else (0,)
    pass_us = _pass_us(areas, accessed, spec.write)
    step_s = spec.step_s if spec.kind in ("stairs", "zigzag") else 0.0
    return areas, Layout(spec.kind, os.getpid(), areas.ranges(), step_s, time.monotonic(), pass_us, spec.uffd)


def _loop(areas: Areas, layout: Layout, write: bool, deadline: float, between: Callable[[], None]) -> None:
    while (now := time.monotonic()) < deadline:
        for index in layout.hot_areas(now):
            areas.touch(index, write=write)
        between()


def child_layout_path(layout: Path, index: int) -> Path:
    """Where child ``index`` of a workload run with ``--layout layout`` writes its layout."""
    return layout.with_name(f"{layout.name}.child{index}")


def _publish(layout: Layout, path: Path | None) -> None:
    """The layout to ``path`` (whole or not at all), or as a line to standard output."""
    if path is None:
        os.write(sys.stdout.fileno(), (layout.to_json() + "\n").encode())
        return
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(layout.to_json())
    partial.replace(path)


class _Children:
    """The children a workload forks, each running a workload of its own until ``deadline``."""

    def __init__(self, spec: _Spec, deadline: float, layout: Path | None) -> None:
        self._spec, self._deadline, self._layout = spec, deadline, layout
        self.pids: list[int] = []

    def fork(self) -> None:
        index = len(self.pids)
        pid = os.fork()
        if pid:
            self.pids.append(pid)
            return
        status = 1
        try:  # the child never returns into its parent's code
            areas, layout = _set_up(self._spec)
            with areas:
                if self._layout is not None:
                    _publish(layout, child_layout_path(self._layout, index))
                _loop(areas, layout, self._spec.write, self._deadline, lambda: None)
            status = 0
        finally:
            os._exit(status)

    def reap(self) -> None:
        for pid in self.pids:
            os.waitpid(pid, 0)


def _size(text: str) -> int:
    """Bytes, or a size with a unit ("8MiB"); plain numbers avoid importing the model (slow under TCG)."""
    if text.isdigit():
        return int(text)
    from kdamon.model.units import parse_size

    try:
        return parse_size(text, "size")
    except KdamonError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def main(argv: Sequence[str] | None = None) -> int:
    """Run one workload as a program (see the module docstring); returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python3 -m kdamon.testing.workloads",
        description="Access memory in a known pattern, for a monitor to find.",
    )
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument(
        "--sizes",
        nargs="+",
        type=_size,
        help="area sizes (default: hot_cold 8MiB 64MiB; stripes 12 x 1MiB; else 4 x 4MiB)",
    )
    parser.add_argument("--step", type=float, default=1.0, help="seconds per stairs/zigzag step (default 1)")
    parser.add_argument("--seconds", type=float, default=0.0, help="stop after this long (default: run until killed)")
    parser.add_argument(
        "--uffd", action="store_true", help="register the areas for userfaultfd async write-protect (Linux 6.7+)"
    )
    parser.add_argument("--read", action="store_true", help="read the hot areas, not write them")
    parser.add_argument("--layout", type=Path, help="write the layout as JSON to this file (default: a line to stdout)")
    parser.add_argument(
        "--children",
        type=int,
        default=0,
        metavar="N",
        help="fork N children with areas of their own (layouts in FILE.child<i>)",
    )
    when = parser.add_mutually_exclusive_group()
    when.add_argument(
        "--fork-after",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="fork the children after this long (default at once)",
    )
    when.add_argument("--fork-on-sigusr1", action="store_true", help="fork N children at each SIGUSR1 instead")
    args = parser.parse_args(argv)
    spec = _Spec(args.kind, tuple(args.sizes or _default_sizes(args.kind)), args.step, args.uffd, not args.read)
    try:
        areas, layout = _set_up(spec)
    except KdamonError as err:
        parser.exit(2, f"{parser.prog}: {err}\n")
    deadline = layout.t0 + args.seconds if args.seconds > 0 else float("inf")
    children = _Children(spec, deadline, args.layout)
    requests = [0]  # forks asked for and not done yet
    if args.fork_on_sigusr1:
        signal.signal(signal.SIGUSR1, lambda _signum, _frame: requests.__setitem__(0, requests[0] + 1))
    elif args.children > 0:
        requests[0] = 1
    fork_at = time.monotonic() + args.fork_after

    def fork_when_asked() -> None:
        if requests[0] and time.monotonic() >= fork_at:
            requests[0] -= 1
            for _ in range(args.children):
                children.fork()

    with areas:
        _publish(layout, args.layout)
        _loop(areas, layout, spec.write, deadline, fork_when_asked)
        children.reap()
    return 0


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)


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
    spec = _Spec(kind, tuple(sizes) or _default_sizes(kind), step_s)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child never returns into the caller's code
        code = 1
        try:
            os.close(read_fd)
            os.nice(5)  # a busy loop: let the monitor (kdamond, trace reader) have the CPU when it needs it
            areas, layout = _set_up(spec)
            os.write(write_fd, (layout.to_json() + "\n").encode())
            deadline = layout.t0 + seconds if seconds > 0 else float("inf")
            _loop(areas, layout, spec.write, deadline, lambda: None)
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
