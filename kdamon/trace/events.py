"""The ``damon`` trace events kdamon reads, and their binary layout.

The layout of each event comes from its ``format`` file at run time (offsets
differ between architectures and may change between kernels); this module
parses those files and builds one ``struct.Struct`` per event that unpacks
exactly the fields kdamon uses, in the order of ``EventSpec.fields``.
"""

from __future__ import annotations

import re
import struct

import attrs

from kdamon.errors import KernelError

__all__ = [
    "AGGREGATED",
    "BEFORE_APPLY",
    "EVENT_SPECS",
    "INTERVALS_TUNE",
    "EventFormat",
    "EventSpec",
    "Field",
    "RawDecoder",
    "parse_format",
]

AGGREGATED = "damon_aggregated"
BEFORE_APPLY = "damos_before_apply"
INTERVALS_TUNE = "damon_monitor_intervals_tune"


@attrs.frozen
class EventSpec:
    """An event kdamon consumes and the fields it takes from it, in the kernel's
    layout order (so that one ``struct`` unpack yields them in this order)."""

    name: str
    fields: tuple[str, ...]


EVENT_SPECS: dict[str, EventSpec] = {
    AGGREGATED: EventSpec(AGGREGATED, ("target_id", "nr_regions", "start", "end", "nr_accesses", "age")),
    BEFORE_APPLY: EventSpec(
        BEFORE_APPLY,
        ("context_idx", "scheme_idx", "target_idx", "start", "end", "nr_accesses", "age", "nr_regions"),
    ),
    INTERVALS_TUNE: EventSpec(INTERVALS_TUNE, ("sample_us",)),
}


@attrs.frozen
class Field:
    name: str
    offset: int
    size: int
    signed: bool


@attrs.frozen
class EventFormat:
    """The parsed ``events/<system>/<event>/format`` file."""

    name: str
    id: int
    fields: dict[str, Field]


_FIELD_RE = re.compile(
    r"field:(?P<decl>[^;]+);\s*offset:(?P<offset>\d+);\s*size:(?P<size>\d+);\s*signed:(?P<signed>\d+);"
)


def parse_format(text: str) -> EventFormat:
    """Parse the text of an event ``format`` file."""
    name_m = re.search(r"^name:\s*(\S+)", text, re.M)
    id_m = re.search(r"^ID:\s*(\d+)", text, re.M)
    if name_m is None or id_m is None:
        raise KernelError(
            "a trace event format file lacks its name or ID line; is this a tracefs "
            "events/<system>/<event>/format file?"
        )
    fields = {}
    for m in _FIELD_RE.finditer(text):
        decl = m["decl"].strip()
        fname = re.sub(r"\[.*\]$", "", decl.split()[-1])
        fields[fname] = Field(fname, int(m["offset"]), int(m["size"]), m["signed"] == "1")
    return EventFormat(name_m[1], int(id_m[1]), fields)


_CODES = {1: "b", 2: "h", 4: "i", 8: "q"}


@attrs.frozen
class RawDecoder:
    """Unpacks one event's payload into ``(common_pid, *spec.fields)``."""

    spec: EventSpec
    id: int
    struct: struct.Struct

    @classmethod
    def build(cls, fmt: EventFormat, spec: EventSpec) -> RawDecoder:
        """Build the decoder of ``spec`` from the event's ``format``."""
        wanted = ("common_pid", *spec.fields)
        missing = [f for f in wanted if f not in fmt.fields]
        if missing:
            raise KernelError(
                f"trace event {fmt.name} lacks fields {missing}; this kernel's layout is "
                "not one kdamon knows, use the text reader (raw=False)"
            )
        # Unpack the fields in offset order, then reorder to the spec's order.
        by_offset = sorted((fmt.fields[f] for f in wanted), key=lambda f: f.offset)
        code, pos = "<", 0
        for f in by_offset:
            if f.size not in _CODES or f.offset < pos:
                raise KernelError(f"trace event {fmt.name} field {f.name} has an unexpected layout")
            code += "x" * (f.offset - pos)
            letter = _CODES[f.size]
            code += letter if f.signed else letter.upper()
            pos = f.offset + f.size
        order = [f.name for f in by_offset]
        if order != list(wanted):
            raise KernelError(
                f"trace event {fmt.name}: fields are not laid out in the order kdamon expects "
                f"({order}); use the text reader (raw=False)"
            )
        return cls(spec, fmt.id, struct.Struct(code))
