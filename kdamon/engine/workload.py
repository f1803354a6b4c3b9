"""A hot/cold demo workload whose hot memory is known.

It maps a *hot* and a *cold* anonymous area between inaccessible guard
pages (so they stay distinct mappings), writes every page of both
once, then keeps writing (or reading) every page of the hot area in a loop.
With ``uffd=True`` both areas are registered for userfaultfd async
write-protect first, so that a monitor can see the writes per page through
``PAGEMAP_SCAN``.

Run it as a program::

    python3 -m kdamon.engine.workload --hot 8MiB --cold 64MiB --seconds 30 \
        [--uffd] [--read] [--layout FILE] [--children N [--fork-after SECONDS]]

With ``--layout`` it writes a JSON description of the areas
(:class:`WorkloadLayout`) to ``FILE`` once they are set up.  With
``--children N`` it forks N children after ``--fork-after`` seconds, each
with hot and cold areas of its own (the same sizes, new mappings) that it
touches until the end; child ``i`` writes its layout to ``FILE.child<i>``
(:func:`child_layout_path`); with ``--fork-on-sigusr1`` it forks N more
at each ``SIGUSR1`` instead.  The parent reaps them before it exits.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import mmap
import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import attrs
import numpy as np

from kdamon.engine.uffd import AsyncWriteProtect
from kdamon.errors import EngineError, KdamonError
from kdamon.model.units import parse_size

__all__ = ["HotColdWorkload", "WorkloadLayout", "child_layout_path", "main"]

_PAGE = mmap.PAGESIZE
_libc = ctypes.CDLL(None, use_errno=True)


@attrs.frozen
class WorkloadLayout:
    """Where a running :class:`HotColdWorkload` keeps its memory."""

    pid: int
    hot_start: int
    hot_end: int
    cold_start: int
    cold_end: int
    uffd: bool

    def to_json(self) -> str:
        return json.dumps(attrs.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WorkloadLayout:
        return cls(**json.loads(text))


class HotColdWorkload:
    """The areas of the workload, in this process; use as a context manager."""

    def __init__(self, hot_bytes: int, cold_bytes: int, *, uffd: bool = False) -> None:
        hot = -(-hot_bytes // _PAGE) * _PAGE
        cold = -(-cold_bytes // _PAGE) * _PAGE
        if hot <= 0 or cold <= 0:
            raise EngineError("the hot and cold areas need at least one page each")
        # guard | hot | guard | cold | guard: inaccessible pages keep both areas
        # separate mappings, never merged with each other or with neighbours
        self._map = mmap.mmap(-1, hot + cold + 3 * _PAGE,
                              flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self._bytes = np.frombuffer(self._map, dtype=np.uint8)
        base = self._bytes.ctypes.data
        for guard in (base, base + _PAGE + hot, base + 2 * _PAGE + hot + cold):
            if _libc.mprotect(ctypes.c_void_p(guard), ctypes.c_size_t(_PAGE), 0) != 0:
                raise EngineError(f"mprotect of a guard page failed: "
                                  f"{os.strerror(ctypes.get_errno())}")
        hot_start = base + _PAGE
        cold_start = hot_start + hot + _PAGE
        self._hot = self._bytes[_PAGE:_PAGE + hot]
        self._cold = self._bytes[2 * _PAGE + hot:2 * _PAGE + hot + cold]
        self._uffd: AsyncWriteProtect | None = None
        self._hot[::_PAGE] = 1
        self._cold[::_PAGE] = 1
        if uffd:
            self._uffd = AsyncWriteProtect()
            for start, size in ((hot_start, hot), (cold_start, cold)):
                self._uffd.register(start, size)
                self._uffd.write_protect(start, size)
        self.layout = WorkloadLayout(os.getpid(), hot_start, hot_start + hot, cold_start,
                                     cold_start + cold, uffd)

    def touch_hot(self, *, write: bool = True) -> int:
        """Access every page of the hot area once; returns a checksum of what was read."""
        if write:
            self._hot[::_PAGE] += 1
            return 0
        return int(self._hot[::_PAGE].sum())

    def run(self, seconds: float, *, write: bool = True) -> None:
        """Keep touching the hot area for ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.touch_hot(write=write)

    def close(self) -> None:
        if self._uffd is not None:
            self._uffd.close()
        del self._hot, self._cold, self._bytes
        self._map.close()

    def __enter__(self) -> HotColdWorkload:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


def child_layout_path(layout: Path, index: int) -> Path:
    """Where child ``index`` of a workload run with ``--layout layout`` writes its layout."""
    return layout.with_name(f"{layout.name}.child{index}")


def _write_layout(path: Path | None, layout: WorkloadLayout) -> None:
    if path is not None:
        partial = path.with_name(path.name + ".tmp")
        partial.write_text(layout.to_json())
        partial.replace(path)


class _Children:
    """The children a workload forks, each running a workload of its own until ``deadline``."""

    def __init__(self, hot: int, cold: int, deadline: float, *, uffd: bool, write: bool,
                 layout: Path | None) -> None:
        self._sizes = (hot, cold)
        self._deadline = deadline
        self._uffd, self._write, self._layout = uffd, write, layout
        self.pids: list[int] = []

    def fork(self) -> None:
        index = len(self.pids)
        pid = os.fork()
        if pid:
            self.pids.append(pid)
            return
        status = 1
        try:  # the child never returns into its parent's code
            with HotColdWorkload(*self._sizes, uffd=self._uffd) as workload:
                _write_layout(child_layout_path(self._layout, index) if self._layout else None,
                              workload.layout)
                workload.run(self._deadline - time.monotonic(), write=self._write)
            status = 0
        finally:
            os._exit(status)

    def reap(self) -> None:
        for pid in self.pids:
            os.waitpid(pid, 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the workload as a program; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python3 -m kdamon.engine.workload",
                                     description="Touch a hot memory area, leave a cold one.")
    parser.add_argument("--hot", default="8MiB", help="hot area size (default 8MiB)")
    parser.add_argument("--cold", default="64MiB", help="cold area size (default 64MiB)")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to run")
    parser.add_argument("--uffd", action="store_true",
                        help="register the areas for userfaultfd async write-protect")
    parser.add_argument("--read", action="store_true", help="read the hot area, not write")
    parser.add_argument("--layout", type=Path, help="write the areas as JSON to this file")
    parser.add_argument("--children", type=int, default=0, metavar="N",
                        help="fork N children with areas of their own (layouts in FILE.child<i>)")
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--fork-after", type=float, default=0.0, metavar="SECONDS",
                      help="fork the children after this long (default at once)")
    when.add_argument("--fork-on-sigusr1", action="store_true",
                      help="fork N children at each SIGUSR1 instead")
    args = parser.parse_args(argv)
    try:
        hot, cold = parse_size(args.hot, "--hot"), parse_size(args.cold, "--cold")
        workload = HotColdWorkload(hot, cold, uffd=args.uffd)
    except KdamonError as error:
        parser.exit(2, f"{parser.prog}: {error}\n")
    write = not args.read
    deadline = time.monotonic() + args.seconds
    children = _Children(hot, cold, deadline, uffd=args.uffd, write=write, layout=args.layout)
    requests = [0]  # forks asked for and not done yet
    if args.fork_on_sigusr1:
        signal.signal(signal.SIGUSR1, lambda _signum, _frame: requests.__setitem__(0, requests[0] + 1))
    elif args.children > 0:
        requests[0] = 1
    fork_at = time.monotonic() + args.fork_after
    with workload:
        _write_layout(args.layout, workload.layout)
        while time.monotonic() < deadline:
            workload.touch_hot(write=write)
            if requests[0] and time.monotonic() >= fork_at:
                requests[0] -= 1
                for _ in range(args.children):
                    children.fork()
        children.reap()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
