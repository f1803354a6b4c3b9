"""Parsers for DAMON trace output, and the assembly of events into model records.

Both parsers produce ``RawEvent`` tuples ``(time_ns, event_name, values)``
where ``values`` is ``(common_pid, *EventSpec.fields)``:

* ``TextParser`` reads ``trace_pipe`` lines (the event's printk text);
* ``parse_page`` reads one ``per_cpu/cpuN/trace_pipe_raw`` page (ring-buffer
  page header, 32-bit event headers, payloads decoded per ``format``).

``RecordAssembler`` turns them into ``Snapshot`` (one per target per
aggregation), ``SchemeApply`` and ``IntervalsTune``.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable, Iterator

from kdamon.kernel.tracefs_format import AGGREGATED, BEFORE_APPLY, INTERVALS_TUNE, RawDecoder
from kdamon.model import IntervalsTune, RegionState, SchemeApply, Snapshot

__all__ = [
    "PAGE_HEADER_SIZE",
    "RawEvent",
    "Record",
    "RecordAssembler",
    "TextParser",
    "parse_page",
]

RawEvent = tuple[int, str, tuple[int, ...]]
Record = Snapshot | SchemeApply | IntervalsTune

# -- text --------------------------------------------------------------------

_HEADER_RE = re.compile(
    r"^\s*.+?-(\d+)\s+(?:\(\s*[-\d]+\)\s+)?\[\d+\]\s+(?:\S+\s+)?(\d+)\.(\d+):\s+(\w+):\s+(.*?)\s*$"
)
_BODY_RES = {
    AGGREGATED: re.compile(r"target_id=(\d+) nr_regions=(\d+) (\d+)-(\d+): (\d+) (\d+)"),
    # printk order: ctx scheme target nr_regions start end nr_accesses age
    BEFORE_APPLY: re.compile(
        r"ctx_idx=(\d+) scheme_idx=(\d+) target_idx=(\d+) nr_regions=(\d+) (\d+)-(\d+): (\d+) (\d+)"
    ),
    INTERVALS_TUNE: re.compile(r"sample_us=(\d+)"),
}


class TextParser:
    """Parses ``trace_pipe`` text lines of the DAMON events kdamon reads."""

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


# -- binary ------------------------------------------------------------------

PAGE_HEADER_SIZE = 16  # u64 timestamp, local_t commit (8 bytes on 64-bit)
_MISSED_EVENTS = 1 << 31
_MISSED_STORED = 1 << 30
_COMMIT_MASK = _MISSED_STORED - 1
_TS_SHIFT = 27
_TS_MASK = (1 << 59) - 1
_PAGE_HEADER = struct.Struct("<QQ")
_U32 = struct.Struct("<I")
_U16 = struct.Struct("<H")
_U64 = struct.Struct("<Q")


def parse_page(
    page: bytes, decoders: dict[int, RawDecoder], out: list[RawEvent]
) -> int:
    """Append the events of one ring-buffer page to ``out``.

    Returns the number of events the kernel reported lost before this page
    (0 if none; -1 if it lost some but did not store how many).
    """
    ts, commit = _PAGE_HEADER.unpack_from(page, 0)
    size = commit & _COMMIT_MASK
    end = PAGE_HEADER_SIZE + size
    if end > len(page):
        end = len(page)
    u32 = _U32.unpack_from
    u16 = _U16.unpack_from
    get = decoders.get
    append = out.append
    pos = PAGE_HEADER_SIZE
    while pos + 4 <= end:
        (hdr,) = u32(page, pos)
        type_len = hdr & 31
        delta = hdr >> 5
        if type_len == 0:
            length = (u32(page, pos + 4)[0] - 4 + 3) & ~3
            if length <= 0:
                break  # corrupt page: stop rather than loop
            data = pos + 8
        elif type_len <= 28:
            length = type_len * 4
            data = pos + 4
        elif type_len == 29:  # padding; a null one (no delta) ends the page
            if delta == 0 or pos + 8 > end:
                break
            pos += 4 + u32(page, pos + 4)[0]
            continue
        elif type_len == 30:  # time extend
            ts += delta + (u32(page, pos + 4)[0] << _TS_SHIFT)
            pos += 8
            continue
        else:  # 31: absolute time stamp
            ts = (ts & ~_TS_MASK) | (u32(page, pos + 4)[0] << _TS_SHIFT) | delta
            pos += 8
            continue
        ts += delta
        dec = get(u16(page, data)[0])
        if dec is not None:
            append((ts, dec.spec.name, dec.struct.unpack_from(page, data)))
        pos = data + length
    if not commit & _MISSED_EVENTS:
        return 0
    if commit & _MISSED_STORED and PAGE_HEADER_SIZE + size + 8 <= len(page):
        return int(_U64.unpack_from(page, PAGE_HEADER_SIZE + size)[0])
    return -1


# -- assembly ----------------------------------------------------------------


class _Pending:
    __slots__ = ("nr", "regions", "last_end")

    def __init__(self, nr: int) -> None:
        self.nr = nr
        self.regions: list[RegionState] = []
        self.last_end = 0


class RecordAssembler:
    """Groups raw events into model records for one kdamond.

    ``damon_aggregated`` events of one target at one aggregation arrive in
    address order; a snapshot is complete when ``nr_regions`` of them have
    arrived.  A group cut short (lost events) is dropped and counted in
    ``incomplete``.  ``pid`` filters events by ``common_pid`` (the kernel
    filter should already have done so).
    """

    def __init__(self, kdamond_idx: int, sample_us: int, aggr_us: int, pid: int | None = None) -> None:
        self.kdamond_idx = kdamond_idx
        self.sample_us = sample_us
        self.aggr_us = aggr_us
        self.pid = pid
        self.incomplete = 0
        self._pending: dict[int, _Pending] = {}

    def feed(self, events: Iterable[RawEvent]) -> Iterator[Record]:
        pending = self._pending
        for ts, name, vals in events:
            if self.pid is not None and vals[0] != self.pid:
                continue
            if name == AGGREGATED:
                _, tid, nr, start, end, acc, age = vals
                group = pending.get(tid)
                if group is None or group.nr != nr or (group.regions and start < group.last_end):
                    if group is not None:
                        self.incomplete += 1
                    group = pending[tid] = _Pending(nr)
                group.regions.append(RegionState(start, end, acc, age))
                group.last_end = end
                if len(group.regions) >= nr:
                    del pending[tid]
                    yield Snapshot(
                        ts, self.kdamond_idx, 0, tid, tuple(group.regions), self.sample_us, self.aggr_us
                    )
            elif name == BEFORE_APPLY:
                _, ctx, scheme, tid, start, end, acc, age, _nr = vals
                yield SchemeApply(ts, ctx, scheme, tid, RegionState(start, end, acc, age))
            elif name == INTERVALS_TUNE:
                sample_us = vals[1]
                ratio = self.aggr_us / max(self.sample_us, 1)
                self.sample_us, self.aggr_us = sample_us, round(sample_us * ratio)
                yield IntervalsTune(ts, sample_us)

    def finish(self) -> None:
        """Count the groups still waiting for events as incomplete."""
        self.incomplete += len(self._pending)
        self._pending.clear()
