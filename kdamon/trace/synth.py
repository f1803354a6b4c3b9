"""Synthesised DAMON trace output, in both forms the kernel produces.

For the host tests of the parsers, the fake tracefs and
``benchmarks/trace_ingest.py``: the ``format`` files use the x86-64 layouts of
the ``damon`` events (identical in 6.12, 6.18 and 7.3), the text lines follow
``trace_pipe``, and the pages follow the ring buffer's page layout.
"""

from __future__ import annotations

import struct

from kdamon.trace.events import AGGREGATED, BEFORE_APPLY, EVENT_SPECS, INTERVALS_TUNE, EventFormat, parse_format
from kdamon.trace.pages import PAGE_HEADER_SIZE

__all__ = ["EVENT_IDS", "FORMAT_TEXTS", "PageWriter", "pages", "payload", "text_line"]

EVENT_IDS = {AGGREGATED: 1750, BEFORE_APPLY: 1751, INTERVALS_TUNE: 1752}

_COMMON = (
    "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n"
    "\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n"
    "\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n"
    "\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n"
)
_LAYOUTS = {
    AGGREGATED: (
        [
            ("unsigned long", "target_id", 8, 8),
            ("unsigned int", "nr_regions", 16, 4),
            ("unsigned long", "start", 24, 8),
            ("unsigned long", "end", 32, 8),
            ("unsigned int", "nr_accesses", 40, 4),
            ("unsigned int", "age", 44, 4),
        ],
        '"target_id=%lu nr_regions=%u %lu-%lu: %u %u"',
    ),
    BEFORE_APPLY: (
        [
            ("unsigned int", "context_idx", 8, 4),
            ("unsigned int", "scheme_idx", 12, 4),
            ("unsigned long", "target_idx", 16, 8),
            ("unsigned long", "start", 24, 8),
            ("unsigned long", "end", 32, 8),
            ("unsigned int", "nr_accesses", 40, 4),
            ("unsigned int", "age", 44, 4),
            ("unsigned int", "nr_regions", 48, 4),
        ],
        '"ctx_idx=%u scheme_idx=%u target_idx=%lu nr_regions=%u %lu-%lu: %u %u"',
    ),
    INTERVALS_TUNE: ([("unsigned long", "sample_us", 8, 8)], '"sample_us=%lu"'),
}


def _format_text(name: str) -> str:
    fields, fmt = _LAYOUTS[name]
    body = "".join(
        f"\tfield:{ctype} {fname};\toffset:{off};\tsize:{size};\tsigned:0;\n" for ctype, fname, off, size in fields
    )
    args = ", ".join(f"REC->{f[1]}" for f in fields)
    return f"name: {name}\nID: {EVENT_IDS[name]}\nformat:\n{_COMMON}{body}\nprint fmt: {fmt}, {args}\n"


FORMAT_TEXTS = {name: _format_text(name) for name in _LAYOUTS}


def text_line(pid: int, time_ns: int, name: str, values: tuple[int, ...], cpu: int = 1) -> str:
    """One ``trace_pipe`` line; ``values`` in ``EventSpec.fields`` order."""
    if name == AGGREGATED:
        tid, nr, start, end, acc, age = values
        body = f"target_id={tid} nr_regions={nr} {start}-{end}: {acc} {age}"
    elif name == BEFORE_APPLY:
        ctx, scheme, tid, start, end, acc, age, nr = values
        body = f"ctx_idx={ctx} scheme_idx={scheme} target_idx={tid} nr_regions={nr} {start}-{end}: {acc} {age}"
    else:
        body = f"sample_us={values[0]}"
    secs, usecs = divmod(time_ns // 1000, 1_000_000)
    return f"       kdamond.0-{pid}     [{cpu:03d}] ..... {secs}.{usecs:06d}: {name}: {body}\n"


def payload(fmt: EventFormat, pid: int, values: dict[str, int]) -> bytes:
    """The binary payload of one event laid out per ``fmt``."""
    size = max(f.offset + f.size for f in fmt.fields.values())
    buf = bytearray((size + 3) & ~3)
    struct.pack_into("<HBBi", buf, 0, fmt.id, 0, 0, pid)
    codes = {1: "B", 2: "H", 4: "I", 8: "Q"}
    for name, value in values.items():
        f = fmt.fields[name]
        struct.pack_into("<" + codes[f.size], buf, f.offset, value)
    return bytes(buf)


class PageWriter:
    """Packs events into ring-buffer pages the way the kernel writes them."""

    def __init__(self, page_size: int = 4096) -> None:
        self.page_size = page_size
        self.pages: list[bytes] = []
        self._data = bytearray()
        self._page_ts = 0
        self._last_ts = 0
        self._lost = 0

    def _flush(self) -> None:
        if not self._data:
            return
        commit = len(self._data)
        page = bytearray(self.page_size)
        page[PAGE_HEADER_SIZE : PAGE_HEADER_SIZE + len(self._data)] = self._data
        if self._lost:  # the kernel stores the count after the data when it fits
            commit |= (1 << 31) | (1 << 30)
            struct.pack_into("<Q", page, PAGE_HEADER_SIZE + len(self._data), self._lost)
            self._lost = 0
        struct.pack_into("<QQ", page, 0, self._page_ts, commit)
        self.pages.append(bytes(page))
        self._data = bytearray()

    def lose(self, count: int) -> None:
        """Close the page: the next one reports ``count`` events lost before it."""
        self._flush()
        self._lost = count

    def add(self, time_ns: int, data: bytes) -> None:
        """Append one event payload at ``time_ns`` (non-decreasing)."""
        if len(data) <= 112:
            record = struct.pack("<I", (len(data) // 4)) + data
        else:
            record = struct.pack("<II", 0, len(data) + 4) + data
        delta = time_ns - self._last_ts
        extend = b""
        if delta >= 1 << 27:
            extend = struct.pack("<II", 30 | ((delta & ((1 << 27) - 1)) << 5), delta >> 27)
            delta = 0
        if PAGE_HEADER_SIZE + len(self._data) + len(extend) + len(record) + 8 > self.page_size:
            self._flush()
        if not self._data:
            self._page_ts, delta, extend = time_ns, 0, b""
        head = struct.unpack_from("<I", record)[0] | (delta << 5)
        self._data += extend + struct.pack("<I", head) + record[4:]
        self._last_ts = time_ns

    def finish(self) -> list[bytes]:
        """Close the last page and return all pages."""
        self._flush()
        return self.pages


def pages(events: list[tuple[int, str, tuple[int, ...]]], pid: int, page_size: int = 4096) -> list[bytes]:
    """Ring-buffer pages of ``(time_ns, event_name, values)`` events (values in ``EventSpec.fields`` order)."""
    formats = {name: parse_format(text) for name, text in FORMAT_TEXTS.items()}
    writer = PageWriter(page_size)
    for time_ns, name, values in events:
        writer.add(time_ns, payload(formats[name], pid, dict(zip(EVENT_SPECS[name].fields, values, strict=True))))
    return writer.finish()
