"""Stream a kdamond's DAMON trace events from a private tracefs instance.

``TraceSession`` creates ``<tracefs>/instances/kdamon-<id>`` (its own ring
buffer: nobody else's tracing is touched and nobody else consumes these
events), enables ``damon:damon_aggregated`` plus ``damos_before_apply`` and
``damon_monitor_intervals_tune`` where the kernel has them, each filtered to
the kdamond's pid, and yields ``Snapshot``/``SchemeApply``/``IntervalsTune``
stamped with the instance's ``mono`` trace clock (``CLOCK_MONOTONIC``) where the
kernel offers it.
The instance is removed on exit, on error and on Ctrl-C (use it as a
context manager).

Two readers: the per-CPU binary ``trace_pipe_raw`` pages (default: faster,
see ``benchmarks/trace_ingest.py``) and the ``trace_pipe`` text.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from operator import itemgetter
from pathlib import Path
from types import TracebackType

import attrs
import numpy as np

from kdamon.errors import FeatureMissingError, KdamonError, KernelError
from kdamon.kernel.sysfs_io import SysfsIO
from kdamon.trace.assemble import RawEvent, Record, RecordAssembler
from kdamon.trace.events import AGGREGATED, EVENT_SPECS, parse_format
from kdamon.trace.lines import AggregatedLines
from kdamon.trace.pages import PageDecoder
from kdamon.trace.text import MARKER, TextParser, parse_block

__all__ = ["TRACEFS_ROOTS", "TraceSession", "damon_events", "find_tracefs", "remove_stale_instances"]

TRACEFS_ROOTS = (Path("/sys/kernel/tracing"), Path("/sys/kernel/debug/tracing"))
_PREFIX = "kdamon-"


def find_tracefs(io: SysfsIO, candidates: tuple[Path, ...] = TRACEFS_ROOTS) -> Path:
    """The first mounted tracefs among ``candidates``."""
    for root in candidates:
        if io.exists(root / "instances"):
            return root
    raise FeatureMissingError(
        f"no tracefs found at {', '.join(map(str, candidates))}: mount it "
        "(mount -t tracefs nodev /sys/kernel/tracing) or pass its path"
    )


def damon_events(io: SysfsIO, tracing: Path) -> tuple[str, ...]:
    """The DAMON trace events kdamon reads that ``tracing`` (a tracefs root or instance) offers."""
    damon = tracing / "events" / "damon"
    return tuple(e for e in EVENT_SPECS if io.exists(damon / e / "enable"))


def remove_stale_instances(io: SysfsIO, root: Path) -> list[str]:
    """Remove instances left by kdamon processes that no longer exist; returns their names."""
    removed = []
    for name in io.listdir(root / "instances"):
        m = re.fullmatch(rf"{_PREFIX}(\d+)-.*", name)
        if m is None or Path(f"/proc/{m[1]}").exists():
            continue
        io.rmdir(root / "instances" / name)
        removed.append(name)
    return removed


class TraceSession:
    """A private tracefs instance tracing one kdamond (a context manager)."""

    def __init__(
        self,
        pid: int,
        *,
        kdamond_idx: int = 0,
        sample_us: int = 5000,
        aggr_us: int = 100000,
        root: Path | None = None,
        raw: bool = True,
        buffer_size_kb: int = 8192,
        io: SysfsIO | None = None,
        poll_s: float = 0.05,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.pid = pid
        self.raw = raw
        self.io = io if io is not None else SysfsIO()
        self.root = root if root is not None else find_tracefs(self.io)
        self.instance = self.root / "instances" / f"{_PREFIX}{os.getpid()}-{kdamond_idx}-{pid}"
        self.assembler = RecordAssembler(kdamond_idx, sample_us, aggr_us, pid)
        self.events: tuple[str, ...] = ()
        self._buffer_size_kb = buffer_size_kb
        self._poll_s = poll_s
        self._sleep = sleep
        self._pages: PageDecoder | None = None
        self._text = TextParser()
        self._fds: list[int] = []
        self._leftover = b""
        self._created = False
        self.missed_pages = 0  # raw pages whose header said events were lost before them

    # -- life cycle -------------------------------------------------------
    def __enter__(self) -> TraceSession:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def open(self) -> None:
        """Create and configure the instance, then open the pipes."""
        self.io.mkdir(self.instance)
        self._created = True
        try:
            self._configure()
        except BaseException:
            self.close()
            raise

    def _configure(self) -> None:
        inst = self.instance
        damon = inst / "events" / "damon"
        self.io.write(inst / "buffer_size_kb", self._buffer_size_kb)
        clock = inst / "trace_clock"  # CLOCK_MONOTONIC stamps, comparable with user space's
        if self.io.exists(clock) and "mono" in self.io.read_str(clock).replace("[", " ").replace("]", " ").split():
            self.io.write(clock, "mono")
        self.events = damon_events(self.io, inst)
        if AGGREGATED not in self.events:
            raise FeatureMissingError(
                f"{damon / AGGREGATED} does not exist: this kernel has no DAMON trace events "
                "(CONFIG_DAMON with tracing)",
                path=str(damon),
            )
        formats = [parse_format(self.io.read_str(damon / name / "format")) for name in self.events]
        self._pages = PageDecoder(formats)
        for name in self.events:
            self.io.write(damon / name / "filter", f"common_pid == {self.pid}")
            self.io.write(damon / name / "enable", 1)
        self.io.write(inst / "tracing_on", 1)
        flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
        if self.raw:
            for cpu in self._cpus():
                self._fds.append(os.open(inst / "per_cpu" / cpu / "trace_pipe_raw", flags))
        else:
            self._fds.append(os.open(inst / "trace_pipe", flags))

    def _cpus(self) -> list[str]:
        names = self.io.listdir(self.instance / "per_cpu")
        return sorted((n for n in names if n.startswith("cpu")), key=lambda n: int(n[3:]))

    def _cleanup(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds.clear()
        if not self._created:
            return
        damon = self.instance / "events" / "damon"
        for name in self.events:
            try:
                self.io.write(damon / name / "enable", 0)
            except KdamonError:
                pass  # rmdir below discards the instance's events anyway
        self.io.rmdir(self.instance)
        self._created = False

    def close(self) -> None:
        """Close the pipes and remove the instance (also when interrupted meanwhile)."""
        try:
            self._cleanup()
        except KeyboardInterrupt:
            self._cleanup()
            raise

    # -- reading ----------------------------------------------------------
    def _page_size(self) -> int:
        header = self.instance.parent.parent / "events" / "header_page"
        if self.io.exists(header):
            m = re.search(r"field: char data;\s*offset:(\d+);\s*size:(\d+);", self.io.read_str(header))
            if m:
                return int(m[1]) + int(m[2])
        return os.sysconf("SC_PAGE_SIZE")

    def _drain_raw(self, page_size: int, pages: PageDecoder) -> tuple[AggregatedLines, list[RawEvent]]:
        parts: list[AggregatedLines] = []
        events: list[RawEvent] = []
        busy_cpus = 0
        for fd in self._fds:
            before = len(parts) + len(events)
            while True:
                try:
                    page = os.read(fd, page_size)
                except BlockingIOError:
                    break
                if not page:
                    break
                if pages.decode(page, parts, events):
                    self.missed_pages += 1
            busy_cpus += len(parts) + len(events) > before
        lines = AggregatedLines.concatenate(parts)
        if busy_cpus > 1:  # the kdamond migrated between CPUs: merge by time
            lines = lines.take(np.argsort(lines.time_ns, kind="stable"))
            events.sort(key=itemgetter(0))
        return lines, events

    def _drain_text(self) -> tuple[AggregatedLines, list[RawEvent]]:
        chunks = []
        while True:
            try:
                chunk = os.read(self._fds[0], 1 << 20)
            except BlockingIOError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        data = self._leftover + b"".join(chunks)
        cut = data.rfind(b"\n") + 1
        self._leftover = data[cut:]
        text_lines = data[:cut].split(b"\n")
        aggregated = [line for line in text_lines if MARKER in line]
        lines = parse_block(b"\n".join(aggregated) + b"\n") if aggregated else AggregatedLines.empty()
        # trace_pipe's "comm-pid" prefix is not read by the block parser: the instance's filter
        # lets only the traced kdamond's events through
        lines = attrs.evolve(lines, kdamond=np.full(lines.size, self.pid, dtype=np.uint64))
        others = (line.decode(errors="replace") for line in text_lines if line and MARKER not in line)
        return lines, list(self._text.parse_lines(others))

    def records(self, until: Callable[[], bool] | None = None) -> Iterator[Record]:
        """Yield records until ``until()`` is true (checked every poll), then drain once more."""
        pages = self._pages
        if not self._fds or pages is None:
            raise KernelError("the trace session is not open: use it as a context manager")
        page_size = self._page_size()
        while True:
            stop = until() if until is not None else False
            lines, events = self._drain_raw(page_size, pages) if self.raw else self._drain_text()
            yield from self.assembler.feed(lines, events)
            if stop:
                self.assembler.finish()
                return
            if not lines.size and not events:
                self._sleep(self._poll_s)

    def lost_events(self) -> int:
        """Events the kernel overwrote before they were read (``overrun`` of every CPU)."""
        total = 0
        for cpu in self._cpus():
            stats = self.io.read_str(self.instance / "per_cpu" / cpu / "stats")
            m = re.search(r"^overrun:\s*(\d+)", stats, re.M)
            total += int(m[1]) if m else 0
        return total

    @property
    def incomplete_snapshots(self) -> int:
        """Snapshots dropped because some of their events were lost."""
        return self.assembler.incomplete
