"""Record files: kdamon's own streaming format and readers for the peer's (damo's) formats.

``RecordWriter`` appends snapshots to a kdamon record file; ``read_records``
reads one back; ``open_any`` recognises and opens any supported format
(kdamon, damo's ``json`` and ``json_compressed``, ``perf script`` text).
Every reader is a ``RecordSource``: iterate it for model ``Snapshot``
objects (``kdamon.model.Snapshot``: columnar regions).
"""

from kdamon.records.detect import FORMATS, detect_format, open_any
from kdamon.records.peer import DamoJsonRecords
from kdamon.records.perf_script import PerfScriptParser, PerfScriptRecords
from kdamon.records.reader import RecordReader, read_records
from kdamon.records.types import RecordMeta, RecordSource, group_by_target
from kdamon.records.writer import RecordWriter

__all__ = [
    "FORMATS",
    "DamoJsonRecords",
    "PerfScriptParser",
    "PerfScriptRecords",
    "RecordMeta",
    "RecordReader",
    "RecordSource",
    "RecordWriter",
    "detect_format",
    "group_by_target",
    "open_any",
    "read_records",
]
