"""Fast reader for ``damon:damon_aggregated`` trace lines (``perf script`` text).

A line looks like::

    kdamond.0  1234 [001]  5678.123456: damon:damon_aggregated: target_id=0 nr_regions=10 4194304-44421120: 0 1

(``trace_pipe`` prints ``damon_aggregated:`` without the ``damon:`` system,
and kernels before 5.16 print no age).  The fast path parses a whole block
of lines with C-speed operations: ``bytes.translate`` keeps the digits (and
deletes the ``.`` of the timestamp, so ``secs.frac`` becomes one number),
``numpy.fromstring`` converts every digit run, and the runs are reshaped into
one row per line.  A sentinel number appended to each line marks line ends
among the runs, which makes the split into lines exact; lines whose prefixes
differ in their digits (``trace_pipe`` flags) are read from their last runs.
Every line must carry the event's name as the block's first line spells it.
Blocks that mix in other events are filtered first; what the fast path
cannot read goes through a per-line regular expression.
Lines are then cut into snapshots per (kdamond, target) by ``nr_regions``.

A file is read in 1 MiB blocks that are not copied to end at a line end:
the line a block cuts is completed from the file and parsed on its own.
``numpy.fromstring`` releases the GIL, so a worker thread converts one
block's digit runs while the reading thread translates the next block, and
the two halves of the work overlap on two CPUs.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, NamedTuple

import attrs
import numpy as np
import numpy.typing as npt

from kdamon.errors import RecordFormatError
from kdamon.records.types import (
    RecordMeta,
    RecordSource,
    RegionArray,
    SnapshotArrays,
    regions_array,
)
from kdamon.userfiles import reading

__all__ = ["PerfScriptParser", "PerfScriptRecords"]

_BLOCK_BYTES = 1 << 20
_MARKER = b"damon_aggregated: target_id="
# An odd number above 2**32: no address (page aligned) or u32 field can take
# it; a timestamp that happens to equal it only sends its block to the slow path.
_SENTINEL = np.uint64(2**32 + 1)
_SENTINEL_TEXT = b" %d\n" % (2**32 + 1)
_U64_MAX = 2**64 - 1  # numpy.fromstring saturates a bigger number to it
_U32_MAX = 2**32 - 1  # nr_accesses and age are 32-bit in records
_KEEP = frozenset(b"0123456789 \n")
_TABLE = bytes(32 if c in b"-\t" else c for c in range(256))
_DELETE = bytes(c for c in range(256) if c not in _KEEP and c not in b"-\t")
_LINE = re.compile(
    rb"(?P<prefix>[^\n]*?)(?P<secs>\d+)\.(?P<frac>\d+): (?P<marker>(?:damon:)?damon_aggregated: target_id=)"
    rb"(?P<tid>\d+|None) nr_regions=(?P<nr>\d+) (?P<start>\d+)-(?P<end>\d+): "
    rb"(?P<nacc>-?\d+)(?: (?P<age>-?\d+))?\s*"
)
_KDAMOND = re.compile(rb"kdamond\.(\d+)")

U64Array = npt.NDArray[np.uint64]


class _Lines(NamedTuple):
    """One column per field of a block of damon_aggregated lines."""

    kdamond: U64Array
    time_ns: U64Array
    target: U64Array
    nr_regions: U64Array
    regions: RegionArray


class _Layout(NamedTuple):
    """Where the fields are among the digit runs of a line."""

    runs: int
    time_col: int
    kdamond_col: int
    frac_digits: int
    has_age: bool
    marker: bytes  # the event's name as the line spells it: perf script's longer one is counted faster


def _digit_runs(text: bytes) -> int:
    return len(text.translate(_TABLE, _DELETE).split())


def _layout_of(line: bytes) -> _Layout | None:
    match = _LINE.fullmatch(line)
    if match is None or match["tid"] == b"None" or match["nacc"].startswith(b"-"):
        return None
    prefix = match["prefix"]
    kdamond = _KDAMOND.search(prefix)
    time_col = _digit_runs(prefix)
    has_age = match["age"] is not None
    return _Layout(
        runs=time_col + 1 + (6 if has_age else 5),
        time_col=time_col,
        kdamond_col=_digit_runs(prefix[: kdamond.start(1)]) if kdamond else -1,
        frac_digits=len(match["frac"]),
        has_age=has_age,
        marker=match["marker"],
    )


def _to_ns(time: U64Array, frac_digits: int) -> U64Array:
    if frac_digits <= 9:
        return time * np.uint64(10 ** (9 - frac_digits))
    return time // np.uint64(10 ** (frac_digits - 9))


def _fields_in_rows(
    values: U64Array, is_end: npt.NDArray[np.bool_], nr_lines: int, layout: _Layout
) -> tuple[U64Array, U64Array] | None:
    """Kdamond numbers and the fields from the timestamp on, if every line has the first line's runs."""
    width = layout.runs + 1
    if values.size != nr_lines * width or int(np.count_nonzero(is_end)) != nr_lines:
        return None
    rows = values.reshape(nr_lines, width)
    if not is_end.reshape(nr_lines, width)[:, layout.runs].all():
        return None
    if layout.kdamond_col >= 0:
        kdamond = rows[:, layout.kdamond_col]
    else:
        kdamond = np.zeros(nr_lines, dtype=np.uint64)
    return kdamond, rows[:, layout.time_col : layout.runs]


def _fields_before_ends(
    values: U64Array, is_end: npt.NDArray[np.bool_], nr_lines: int, layout: _Layout
) -> tuple[U64Array, U64Array] | None:
    """The same, for lines whose prefixes differ (``trace_pipe`` flags): the fields are each line's last runs."""
    line_ends = np.flatnonzero(is_end)
    tail = layout.runs - layout.time_col
    runs = np.diff(line_ends, prepend=-1) - 1
    if line_ends.size != nr_lines or layout.kdamond_col > 0 or (runs < tail + (layout.kdamond_col == 0)).any():
        return None
    fields = values[line_ends[:, None] + np.arange(-tail, 0)]
    if layout.kdamond_col == 0:
        kdamond = values[line_ends - runs]  # the first run of each line
    else:
        kdamond = np.zeros(nr_lines, dtype=np.uint64)
    return kdamond, fields


class _Prepared(NamedTuple):
    """A block made ready for ``numpy.fromstring``: its digit runs, a sentinel after each line."""

    layout: _Layout
    nr_lines: int
    text: bytes
    cut_runs: int  # the runs of a line cut by the block's end, last in ``text``: not the block's to parse


def _prepare(block: bytes, end: int) -> _Prepared | None:
    """The fast path's work on the bytes of the whole lines ``block[:end]``; None if the first is not one it reads.

    The whole block is translated (cutting it at ``end`` would copy it); the
    runs after ``end`` are counted instead, to be dropped from the numbers.
    """
    layout = _layout_of(block[: block.find(b"\n")])
    if layout is None:
        return None
    text = block.translate(_TABLE, _DELETE).replace(b"\n", _SENTINEL_TEXT)
    return _Prepared(layout, block.count(layout.marker, 0, end), text, _digit_runs(block[end:]))


def _numbers(text: bytes) -> U64Array:
    """Every digit run of a prepared text (numpy releases the GIL meanwhile)."""
    return np.fromstring(text, dtype=np.uint64, sep=" ")


def _lines_of(prepared: _Prepared, numbers: U64Array) -> _Lines | None:
    """Cut a prepared block's numbers into lines; None if they are not as the first line promised.

    The sentinels mark the line ends among the numbers.  The fields are taken
    from one row per line when all lines hold as many runs as the first one,
    else from the last runs before each line end (after the timestamp, the
    kernel's format fixes the fields).  Every line must carry the event's marker.
    """
    layout, nr_lines = prepared.layout, prepared.nr_lines
    values = numbers[: numbers.size - prepared.cut_runs]
    is_end = values == _SENTINEL
    found = _fields_in_rows(values, is_end, nr_lines, layout) or _fields_before_ends(values, is_end, nr_lines, layout)
    if found is None:
        return None
    kdamond, fields = found
    starts, ends = fields[:, 3], fields[:, 4]
    if not (ends > starts).all():
        return None  # e.g. damo's placeholder region "0-0: -1 -1"
    if fields.max(initial=0) == _U64_MAX or fields[:, 5:].max(initial=0) > _U32_MAX:
        return None  # maybe a number too big for its field: the slow path names the line
    return _Lines(
        kdamond=kdamond,
        time_ns=_to_ns(fields[:, 0], layout.frac_digits),
        target=fields[:, 1],
        nr_regions=fields[:, 2],
        regions=regions_array(starts, ends, fields[:, 5], fields[:, 6] if layout.has_age else 0),
    )


def _parse_fast(block: bytes) -> _Lines | None:
    """Parse a block of damon_aggregated lines ending in a newline; None if it needs the slow path."""
    prepared = _prepare(block, len(block))
    return None if prepared is None else _lines_of(prepared, _numbers(prepared.text))


def _parse_slow(lines: list[bytes]) -> _Lines:
    """Parse line by line, skipping lines that are not damon_aggregated events."""
    fields: list[tuple[int, int, int, int, int, int, int, int]] = []
    for line in lines:
        match = _LINE.fullmatch(line)
        if match is None or match["nacc"].startswith(b"-"):
            continue  # another event, or damo's placeholder snapshot
        kdamond = _KDAMOND.search(match["prefix"])
        frac = match["frac"]
        time_ns = int(match["secs"]) * 10**9 + int(frac.ljust(9, b"0")[:9])
        tid = match["tid"]
        age = match["age"]
        row = (
            int(kdamond[1]) if kdamond else 0,
            time_ns,
            0 if tid == b"None" else int(tid),
            int(match["nr"]),
            int(match["start"]),
            int(match["end"]),
            int(match["nacc"]),
            int(age) if age is not None else 0,
        )
        if max(row) > _U64_MAX or max(row[6:]) > _U32_MAX:
            raise RecordFormatError(f"a number of this damon_aggregated line is too big for its field "
                                    f"(64 bits, 32 for nr_accesses and age): {line[:300].decode(errors='replace')}")
        fields.append(row)
    columns = np.array(fields, dtype=np.uint64).reshape(len(fields), 8)
    return _Lines(
        kdamond=columns[:, 0],
        time_ns=columns[:, 1],
        target=columns[:, 2],
        nr_regions=columns[:, 3],
        regions=regions_array(columns[:, 4], columns[:, 5], columns[:, 6], columns[:, 7]),
    )


def _parse_block(block: bytes) -> _Lines:
    """Parse complete lines (``block`` ends with a newline)."""
    parsed = _parse_fast(block)
    return parsed if parsed is not None else _parse_slower(block)


def _parse_slower(block: bytes) -> _Lines:
    """Parse what the fast path declined: without the other events' lines if that is enough, else line by line."""
    lines = [line for line in block.split(b"\n") if _MARKER in line]
    if lines and len(lines) < block.count(b"\n"):
        parsed = _parse_fast(b"\n".join(lines) + b"\n")
        if parsed is not None:
            return parsed
    return _parse_slow(lines)


class _Pending(NamedTuple):
    """One of ``_blocks`` and, unless the fast path declined it, the worker thread's reading of its numbers."""

    block: bytes
    end: int
    cut: bytes
    fast: tuple[_Prepared, Future[U64Array]] | None

    def lines(self) -> Iterator[_Lines]:
        """The block's whole lines, then its cut line."""
        parsed = None if self.fast is None else _lines_of(self.fast[0], self.fast[1].result())
        yield parsed if parsed is not None else _parse_slower(self.block[: self.end])
        if self.cut:
            yield _parse_block(self.cut)


def _parse_blocks(blocks: Iterable[tuple[bytes, int, bytes]]) -> Iterator[_Lines]:
    """The lines of ``_blocks``, in order, a block's numbers read in a worker thread.

    ``numpy.fromstring`` releases the GIL: while the worker converts one
    block's digit runs, this thread prepares the next block and then cuts
    the converted block into lines.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kdamon-perf-script") as pool:
        pending: _Pending | None = None
        for block, end, cut in blocks:
            prepared = _prepare(block, end)
            fast = None if prepared is None else (prepared, pool.submit(_numbers, prepared.text))
            if pending is not None:
                yield from pending.lines()
            pending = _Pending(block, end, cut, fast)
        if pending is not None:
            yield from pending.lines()


@attrs.define
class _Partial:
    """A snapshot whose lines have not all arrived yet."""

    time_ns: int
    nr_regions: int
    pieces: list[RegionArray]
    count: int


class PerfScriptParser:
    """Turn damon_aggregated text into ``SnapshotArrays``, block by block.

    ``feed()`` accepts any slice of the text (lines may be split between
    calls) and returns the snapshots it completed; ``finish()`` parses what
    is left.  A snapshot still missing lines at the end is dropped and sets
    ``truncated``.  ``sample_us``/``aggr_us`` are stamped on every snapshot
    (the text does not carry them; 0 means unknown).
    """

    def __init__(self, *, sample_us: int = 0, aggr_us: int = 0) -> None:
        self._sample_us = sample_us
        self._aggr_us = aggr_us
        self._rest = b""
        self._partials: dict[tuple[int, int], _Partial] = {}
        self.truncated = False

    def feed(self, data: bytes) -> list[SnapshotArrays]:
        if self._rest:
            data = self._rest + data
        cut = data.rfind(b"\n") + 1
        self._rest = data[cut:]
        if cut == 0:
            return []
        return self._assemble(_parse_block(data if cut == len(data) else data[:cut]))

    def finish(self) -> list[SnapshotArrays]:
        done = self._assemble(_parse_block(self._rest + b"\n")) if self._rest.strip() else []
        self._rest = b""
        if self._partials:
            self.truncated = True
            self._partials.clear()
        return done

    def _snapshot(self, key: tuple[int, int], time_ns: int, regions: RegionArray) -> SnapshotArrays:
        return SnapshotArrays(
            time_ns=time_ns,
            kdamond_idx=key[0],
            context_idx=0,
            target_idx=key[1],
            regions=regions,
            sample_us=self._sample_us,
            aggr_us=self._aggr_us,
        )

    def _assemble(self, lines: _Lines) -> list[SnapshotArrays]:
        count = lines.target.size
        if count == 0:
            return []
        kdamond, target = lines.kdamond, lines.target
        if (kdamond == kdamond[0]).all() and (target == target[0]).all():
            key = (int(kdamond[0]), int(target[0]))
            return self._segment(key, lines.time_ns, lines.nr_regions, lines.regions)
        order = np.lexsort((target, kdamond))
        sorted_kd, sorted_target = kdamond[order], target[order]
        change = np.flatnonzero((sorted_kd[1:] != sorted_kd[:-1]) | (sorted_target[1:] != sorted_target[:-1])) + 1
        bounds = [0, *change.tolist(), count]
        done: list[SnapshotArrays] = []
        for begin, end in itertools.pairwise(bounds):
            index = order[begin:end]
            key = (int(sorted_kd[begin]), int(sorted_target[begin]))
            done.extend(self._segment(key, lines.time_ns[index], lines.nr_regions[index], lines.regions[index]))
        done.sort(key=lambda snapshot: snapshot.time_ns)
        return done

    def _segment(
        self, key: tuple[int, int], times: U64Array, nr_regions: U64Array, regions: RegionArray
    ) -> list[SnapshotArrays]:
        """Cut one (kdamond, target)'s consecutive lines into snapshots of ``nr_regions`` lines."""
        done: list[SnapshotArrays] = []
        count = nr_regions.size
        pos = 0
        partial = self._partials.pop(key, None)
        if partial is not None:
            take = min(partial.nr_regions - partial.count, count)
            mismatch = np.flatnonzero(nr_regions[:take] != partial.nr_regions)
            if mismatch.size:
                take = int(mismatch[0])  # lines were lost: close the snapshot with what it has
            partial.pieces.append(regions[:take])
            partial.count += take
            pos = take
            if mismatch.size or partial.count == partial.nr_regions:
                done.append(self._snapshot(key, partial.time_ns, np.concatenate(partial.pieces)))
            else:
                self._partials[key] = partial
        while pos < count:
            size = int(nr_regions[pos])
            if size == 0:
                pos += 1  # a line that claims no regions belongs to no snapshot
                continue
            end = min(pos + size, count)
            mismatch = np.flatnonzero(nr_regions[pos:end] != size)
            if mismatch.size:
                end = pos + int(mismatch[0])
            elif pos + size > count:
                self._partials[key] = _Partial(int(times[pos]), size, [regions[pos:count]], count - pos)
                break
            done.append(self._snapshot(key, int(times[pos]), regions[pos:end]))
            pos = end
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

    def arrays(self) -> Iterator[SnapshotArrays]:
        parser = PerfScriptParser(sample_us=self._meta.sample_us, aggr_us=self._meta.aggr_us)
        with reading(self.path), open(self.path, "rb") as stream:
            for lines in _parse_blocks(_blocks(stream)):
                yield from parser._assemble(lines)
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
