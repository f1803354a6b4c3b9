"""Decode ``per_cpu/cpuN/trace_pipe_raw`` ring-buffer pages.

A page is a 16-byte header (``u64`` timestamp, ``commit`` word whose low bits
hold the data length) and records, each a 32-bit header (5-bit ``type_len``,
27-bit time delta) and a payload laid out as the event's ``format`` says.

``damon_aggregated`` events, nearly all of the traffic, are decoded in runs:
consecutive records of that event have the same length, so a run is one
numpy structured view of the page whose columns become
:class:`~kdamon.trace.lines.AggregatedLines` (its ``kdamond`` column holds the
``common_pid``).  Other events (``damos_before_apply``, interval tunes), time
extends and padding take the per-record path, which yields ``RawEvent``
tuples.
"""

from __future__ import annotations

import struct

import attrs
import numpy as np

from kdamon.model.snapshot import regions_array
from kdamon.trace.assemble import RawEvent
from kdamon.trace.events import AGGREGATED, EVENT_SPECS, EventFormat, RawDecoder
from kdamon.trace.lines import AggregatedLines

__all__ = ["PAGE_HEADER_SIZE", "AggregatedDecoder", "PageDecoder"]

PAGE_HEADER_SIZE = 16  # u64 timestamp, local_t commit (8 bytes on 64-bit)
_MISSED_EVENTS = 1 << 31
_MISSED_STORED = 1 << 30
_COMMIT_MASK = _MISSED_STORED - 1
_TS_SHIFT = 27
_TS_MASK = (1 << 59) - 1
_MAX_SHORT_PAYLOAD = 112  # type_len 1..28 stores the payload length / 4 in the header
_PAGE_HEADER = struct.Struct("<QQ")
_U32 = struct.Struct("<I")
_U16 = struct.Struct("<H")
_U64 = struct.Struct("<Q")
_DTYPE_CODES = {
    (1, False): "u1",
    (2, False): "<u2",
    (4, False): "<u4",
    (8, False): "<u8",
    (1, True): "i1",
    (2, True): "<i2",
    (4, True): "<i4",
    (8, True): "<i8",
}


@attrs.frozen
class AggregatedDecoder:
    """Decodes runs of ``damon_aggregated`` records (header and payload) as one numpy view."""

    id: int
    type_len: int
    record: np.dtype[np.void]

    @classmethod
    def build(cls, fmt: EventFormat) -> AggregatedDecoder | None:
        """The decoder for this kernel's layout; None if its records are not of one short length."""
        payload = (max(f.offset + f.size for f in fmt.fields.values()) + 3) & ~3
        wanted = ("common_type", "common_pid", *EVENT_SPECS[AGGREGATED].fields)
        if payload > _MAX_SHORT_PAYLOAD or any(f not in fmt.fields for f in wanted):
            return None
        fields = [fmt.fields[name] for name in wanted]
        record = np.dtype(
            {
                "names": ["header", *wanted],
                "formats": ["<u4", *(_DTYPE_CODES[(f.size, f.signed)] for f in fields)],
                "offsets": [0, *(4 + f.offset for f in fields)],
                "itemsize": 4 + payload,
            }
        )
        return cls(fmt.id, payload // 4, record)

    def lines(self, run: np.ndarray, page_ts: int) -> tuple[AggregatedLines, int]:
        """The events of ``run`` (records that follow the time ``page_ts``) and the time of the last one."""
        times = np.cumsum((run["header"] >> 5).astype(np.uint64)) + np.uint64(page_ts)
        lines = AggregatedLines(
            kdamond=run["common_pid"].astype(np.uint64),
            time_ns=times,
            target=run["target_id"].astype(np.uint64),
            nr_regions=run["nr_regions"].astype(np.uint64),
            regions=regions_array(run["start"], run["end"], run["nr_accesses"], run["age"]),
        )
        return lines, int(times[-1])


class PageDecoder:
    """Decodes pages of one tracefs instance, given its events' ``format`` files."""

    def __init__(self, formats: list[EventFormat]) -> None:
        self.raw: dict[int, RawDecoder] = {}
        self.aggregated: AggregatedDecoder | None = None
        for fmt in formats:
            spec = EVENT_SPECS[fmt.name]
            self.raw[fmt.id] = RawDecoder.build(fmt, spec)
            if fmt.name == AGGREGATED:
                self.aggregated = AggregatedDecoder.build(fmt)

    def decode(self, page: bytes, lines: list[AggregatedLines], events: list[RawEvent]) -> int:
        """Append a page's damon_aggregated runs to ``lines`` and its other events to ``events``.

        Returns the number of events the kernel reported lost before this page
        (0 if none; -1 if it lost some but did not store how many).
        """
        ts, commit = _PAGE_HEADER.unpack_from(page, 0)
        size = commit & _COMMIT_MASK
        end = min(PAGE_HEADER_SIZE + size, len(page))
        u32, u16 = _U32.unpack_from, _U16.unpack_from
        column = self.aggregated
        step = column.record.itemsize if column is not None else 0
        pos = PAGE_HEADER_SIZE
        while pos + 4 <= end:
            (hdr,) = u32(page, pos)
            type_len = hdr & 31
            delta = hdr >> 5
            if (
                column is not None
                and type_len == column.type_len
                and pos + step <= end
                and u16(page, pos + 4)[0] == column.id
            ):
                count = (end - pos) // step
                run = np.frombuffer(page, dtype=column.record, count=count, offset=pos)
                ours = ((run["header"] & 31) == column.type_len) & (run["common_type"] == column.id)
                taken = count if ours.all() else int(ours.argmin())
                decoded, ts = column.lines(run[:taken], ts)
                lines.append(decoded)
                pos += taken * step
                continue
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
            dec = self.raw.get(u16(page, data)[0])
            if dec is not None and dec.spec.name != AGGREGATED:
                events.append((ts, dec.spec.name, dec.struct.unpack_from(page, data)))
            elif dec is not None:  # an aggregated event the column decoder cannot take (unusual layout)
                lines.append(_aggregated_line(ts, dec.struct.unpack_from(page, data)))
            pos = data + length
        if not commit & _MISSED_EVENTS:
            return 0
        if commit & _MISSED_STORED and PAGE_HEADER_SIZE + size + 8 <= len(page):
            return int(_U64.unpack_from(page, PAGE_HEADER_SIZE + size)[0])
        return -1


def _aggregated_line(ts: int, vals: tuple[int, ...]) -> AggregatedLines:
    pid, tid, nr, start, end, acc, age = vals
    one = np.array
    return AggregatedLines(
        one([pid], np.uint64),
        one([ts], np.uint64),
        one([tid], np.uint64),
        one([nr], np.uint64),
        regions_array([start], [end], [acc], [age]),
    )
