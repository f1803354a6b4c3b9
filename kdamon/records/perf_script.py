"""The peer's ``perf script`` text of ``damon:damon_aggregated`` (or ``trace_pipe`` text) as a record.

Lines are read by :mod:`kdamon.trace.text` and cut into snapshots by
:mod:`kdamon.trace.assemble`, the parser and the assembler that also serve
live tracing.  A file is read in 1 MiB blocks that are not copied to end at
a line end: the line a block cuts is completed from the file and parsed on
its own.  ``numpy.fromstring`` releases the GIL, so a worker thread converts
one block's digit runs while the reading thread translates the next block,
and the two halves of the work overlap on two CPUs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, NamedTuple

from kdamon.model.snapshot import Snapshot
from kdamon.records.types import RecordMeta, RecordSource
from kdamon.trace import text
from kdamon.trace.assemble import SnapshotAssembler
from kdamon.trace.lines import AggregatedLines, U64Array
from kdamon.userfiles import reading

__all__ = ["PerfScriptParser", "PerfScriptRecords"]

_BLOCK_BYTES = 1 << 20


class _Pending(NamedTuple):
    """One of ``_blocks`` and, unless the fast path declined it, the worker thread's reading of its numbers."""

    block: bytes
    end: int
    cut: bytes
    fast: tuple[text.Prepared, Future[U64Array]] | None

    def lines(self) -> Iterator[AggregatedLines]:
        """The block's whole lines, then its cut line."""
        parsed = None if self.fast is None else text.lines_of(self.fast[0], self.fast[1].result())
        yield parsed if parsed is not None else text.parse_declined(self.block[: self.end])
        if self.cut:
            yield text.parse_block(self.cut)


def _parse_blocks(blocks: Iterable[tuple[bytes, int, bytes]]) -> Iterator[AggregatedLines]:
    """The lines of ``_blocks``, in order, a block's numbers read in a worker thread.

    ``numpy.fromstring`` releases the GIL: while the worker converts one
    block's digit runs, this thread prepares the next block and then cuts
    the converted block into lines.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kdamon-perf-script") as pool:
        pending: _Pending | None = None
        for block, end, cut in blocks:
            prepared = text.prepare(block, end)
            fast = None if prepared is None else (prepared, pool.submit(text.numbers, prepared.text))
            if pending is not None:
                yield from pending.lines()
            pending = _Pending(block, end, cut, fast)
        if pending is not None:
            yield from pending.lines()


class PerfScriptParser:
    """Turn damon_aggregated text into snapshots, piece by piece.

    ``feed()`` accepts any slice of the text (lines may be split between
    calls) and returns the snapshots it completed; ``finish()`` parses what
    is left.  A snapshot still missing lines at the end is dropped and sets
    ``truncated``; one whose lines were lost on the way is kept with the
    regions it has (the peer's readers do the same).  ``sample_us``/``aggr_us``
    are stamped on every snapshot (the text does not carry them; 0 means unknown).
    """

    def __init__(self, *, sample_us: int = 0, aggr_us: int = 0) -> None:
        self._rest = b""
        self.assembler = SnapshotAssembler(sample_us=sample_us, aggr_us=aggr_us, keep_incomplete=True)
        self.truncated = False

    def feed(self, data: bytes) -> list[Snapshot]:
        if self._rest:
            data = self._rest + data
        cut = data.rfind(b"\n") + 1
        self._rest = data[cut:]
        if cut == 0:
            return []
        return self.assembler.feed(text.parse_block(data if cut == len(data) else data[:cut]))

    def finish(self) -> list[Snapshot]:
        done = self.assembler.feed(text.parse_block(self._rest + b"\n")) if self._rest.strip() else []
        self._rest = b""
        if self.assembler.finish():
            self.truncated = True
        return done


class PerfScriptRecords(RecordSource):
    """A text file of ``perf script`` (or ``trace_pipe``) damon_aggregated lines."""

    format_name = "perf_script"

    def __init__(self, path: str | Path, *, sample_us: int = 0, aggr_us: int = 0) -> None:
        super().__init__(path)
        self._meta = RecordMeta(producer="perf_script", sample_us=sample_us, aggr_us=aggr_us)

    @property
    def meta(self) -> RecordMeta:
        return self._meta

    def snapshots(self) -> Iterator[Snapshot]:
        parser = PerfScriptParser(sample_us=self._meta.sample_us, aggr_us=self._meta.aggr_us)
        with reading(self.path), open(self.path, "rb") as stream:
            for lines in _parse_blocks(_blocks(stream)):
                yield from parser.assembler.feed(lines)
        yield from parser.finish()
        self.truncated = parser.truncated


def _blocks(stream: BinaryIO) -> Iterator[tuple[bytes, int, bytes]]:
    """Blocks of about ``_BLOCK_BYTES``, each with where its last whole line ends and the line it cuts there.

    The cut line is completed from the stream (with a newline if the file's
    last line lacks one) and parsed on its own, so that no block is copied
    to end at a line end.
    """
    while block := stream.read(_BLOCK_BYTES):
        end = block.rfind(b"\n") + 1
        cut = b""
        if end < len(block):
            cut = block[end:] + stream.readline()
            if not cut.endswith(b"\n"):
                cut += b"\n"  # the file's last line has no newline
        yield block, end, cut
