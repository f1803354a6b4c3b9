"""Fast reader of ``damon:damon_aggregated`` text lines (``perf script`` and ``trace_pipe``).

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

The result is :class:`~kdamon.trace.lines.AggregatedLines` (one column per
field); :mod:`kdamon.trace.assemble` cuts them into snapshots.  The work is
split in three steps (``prepare``, ``numbers``, ``lines_of``) so that a
reader can run ``numbers`` (which releases the GIL) in a worker thread.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from kdamon.errors import RecordFormatError
from kdamon.model.snapshot import regions_array
from kdamon.trace.assemble import RawEvent
from kdamon.trace.events import BEFORE_APPLY, INTERVALS_TUNE
from kdamon.trace.lines import AggregatedLines, U64Array

__all__ = [
    "MARKER",
    "SENTINEL",
    "Prepared",
    "TextParser",
    "lines_of",
    "numbers",
    "parse_block",
    "parse_declined",
    "prepare",
]

MARKER = b"damon_aggregated: target_id="

# An odd number above 2**32: no address (page aligned) or u32 field can take
# it; a timestamp that happens to equal it only sends its block to the slow path.
SENTINEL = np.uint64(2**32 + 1)
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


class Prepared(NamedTuple):
    """A block made ready for ``numpy.fromstring``: its digit runs, a sentinel after each line."""

    layout: _Layout
    nr_lines: int
    text: bytes
    cut_runs: int  # the runs of a line cut by the block's end, last in ``text``: not the block's to parse


def prepare(block: bytes, end: int) -> Prepared | None:
    """The fast path's work on the bytes of the whole lines ``block[:end]``; None if the first is not one it reads.

    The whole block is translated (cutting it at ``end`` would copy it); the
    runs after ``end`` are counted instead, to be dropped from the numbers.
    """
    layout = _layout_of(block[: block.find(b"\n")])
    if layout is None:
        return None
    text = block.translate(_TABLE, _DELETE).replace(b"\n", _SENTINEL_TEXT)
    return Prepared(layout, block.count(layout.marker, 0, end), text, _digit_runs(block[end:]))


def numbers(text: bytes) -> U64Array:
    """Every digit run of a prepared text (numpy releases the GIL meanwhile)."""
    return np.fromstring(text, dtype=np.uint64, sep=" ")


def lines_of(prepared: Prepared, runs: U64Array) -> AggregatedLines | None:
    """Cut a prepared block's numbers into lines; None if they are not as the first line promised.

    The sentinels mark the line ends among the numbers.  The fields are taken
    from one row per line when all lines hold as many runs as the first one,
    else from the last runs before each line end (after the timestamp, the
    kernel's format fixes the fields).  Every line must carry the event's marker.
    """
    layout, nr_lines = prepared.layout, prepared.nr_lines
    values = runs[: runs.size - prepared.cut_runs]
    is_end = values == SENTINEL
    found = _fields_in_rows(values, is_end, nr_lines, layout) or _fields_before_ends(values, is_end, nr_lines, layout)
    if found is None:
        return None
    kdamond, fields = found
    starts, ends = fields[:, 3], fields[:, 4]
    if not (ends > starts).all():
        return None  # e.g. damo's placeholder region "0-0: -1 -1"
    if fields.max(initial=0) == _U64_MAX or fields[:, 5:].max(initial=0) > _U32_MAX:
        return None  # maybe a number too big for its field: the slow path names the line
    return AggregatedLines(
        kdamond=kdamond,
        time_ns=_to_ns(fields[:, 0], layout.frac_digits),
        target=fields[:, 1],
        nr_regions=fields[:, 2],
        regions=regions_array(starts, ends, fields[:, 5], fields[:, 6] if layout.has_age else 0),
    )


def _parse_fast(block: bytes) -> AggregatedLines | None:
    """Parse a block of damon_aggregated lines ending in a newline; None if it needs the slow path."""
    prepared = prepare(block, len(block))
    return None if prepared is None else lines_of(prepared, numbers(prepared.text))


def _parse_slow(lines: list[bytes]) -> AggregatedLines:
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
            raise RecordFormatError(
                f"a number of this damon_aggregated line is too big for its field "
                f"(64 bits, 32 for nr_accesses and age): {line[:300].decode(errors='replace')}"
            )
        fields.append(row)
    columns = np.array(fields, dtype=np.uint64).reshape(len(fields), 8)
    return AggregatedLines(
        kdamond=columns[:, 0],
        time_ns=columns[:, 1],
        target=columns[:, 2],
        nr_regions=columns[:, 3],
        regions=regions_array(columns[:, 4], columns[:, 5], columns[:, 6], columns[:, 7]),
    )


def parse_block(block: bytes) -> AggregatedLines:
    """Parse complete lines (``block`` ends with a newline)."""
    parsed = _parse_fast(block)
    return parsed if parsed is not None else parse_declined(block)


def parse_declined(block: bytes) -> AggregatedLines:
    """Parse what the fast path declined: without the other events' lines if that is enough, else line by line."""
    lines = [line for line in block.split(b"\n") if MARKER in line]
    if lines and len(lines) < block.count(b"\n"):
        parsed = _parse_fast(b"\n".join(lines) + b"\n")
        if parsed is not None:
            return parsed
    return _parse_slow(lines)


# -- the other DAMON events of trace_pipe text, line by line --------------------------

_HEADER_RE = re.compile(r"^\s*.+?-(\d+)\s+(?:\(\s*[-\d]+\)\s+)?\[\d+\]\s+(?:\S+\s+)?(\d+)\.(\d+):\s+(\w+):\s+(.*?)\s*$")
_BODY_RES = {
    # printk order: ctx scheme target nr_regions start end nr_accesses age
    BEFORE_APPLY: re.compile(
        r"ctx_idx=(\d+) scheme_idx=(\d+) target_idx=(\d+) nr_regions=(\d+) (\d+)-(\d+): (\d+) (\d+)"
    ),
    INTERVALS_TUNE: re.compile(r"sample_us=(\d+)"),
}


class TextParser:
    """Parses ``trace_pipe`` lines of the DAMON events other than damon_aggregated (which ``parse_block`` reads)."""

    def __init__(self) -> None:
        self.unparsed = 0  # DAMON lines whose text did not match (counted, skipped)

    def parse_line(self, line: str) -> RawEvent | None:
        """The event of one line, or None for other events, comments and junk."""
        head = _HEADER_RE.match(line)
        if head is None:
            return None
        pid, secs, frac, name, body = head.groups()
        body_re = _BODY_RES.get(name)
        if body_re is None:
            return None
        m = body_re.match(body)
        if m is None:
            self.unparsed += 1
            return None
        vals = [int(pid), *map(int, m.groups())]
        if name == BEFORE_APPLY:
            vals.append(vals.pop(4))  # move nr_regions last: the binary layout's order
        time_ns = int(secs) * 1_000_000_000 + int(frac) * 10 ** (9 - len(frac))
        return (time_ns, name, tuple(vals))

    def parse_lines(self, lines: Iterable[str]) -> Iterator[RawEvent]:
        for line in lines:
            ev = self.parse_line(line)
            if ev is not None:
                yield ev
