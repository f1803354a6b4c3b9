"""Check results and the console wire format that carries them out of a guest.

The guest's file systems are read-only copies of host directories, so the
results come back on the serial console: one line per check, starting with
:data:`RESULT_PREFIX`, then the CRC-32 of the JSON text (the kernel may
print into the middle of a line) and one JSON object.  A begin line carries
what the guest knows about itself (kernel release, Python) and an end line
the number of results, so that the host can tell a complete run from a
guest that died half-way.
"""

from __future__ import annotations

import enum
import json
import re
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

__all__ = [
    "BEGIN_PREFIX",
    "END_PREFIX",
    "RESULT_PREFIX",
    "CheckResult",
    "ConsoleResults",
    "KernelReport",
    "Status",
    "begin_line",
    "end_line",
    "parse_console",
    "result_line",
]

RESULT_PREFIX = "KDAMON-CHECK-RESULT "
BEGIN_PREFIX = "KDAMON-CHECK-BEGIN "
END_PREFIX = "KDAMON-CHECK-END "
_LINE = re.compile(r"(KDAMON-CHECK-(?:RESULT|BEGIN|END)) ([0-9a-f]{8}) (\{.*\})\s*$")


class Status(enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"
    ERROR = "error"

    @property
    def bad(self) -> bool:
        """Whether this status makes the run fail."""
        return self in (Status.FAIL, Status.ERROR)


@attrs.frozen
class CheckResult:
    """The outcome of one check.  ``id`` is stable across kernels and releases."""

    id: str
    title: str
    status: Status
    message: str = ""
    duration_s: float = 0.0
    group: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "group": self.group,
            "title": self.title,
            "status": self.status.value,
            "message": self.message,
            "duration_s": round(self.duration_s, 3),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckResult:
        return cls(
            id=str(data["id"]),
            title=str(data.get("title", "")),
            status=Status(data["status"]),
            message=str(data.get("message", "")),
            duration_s=float(data.get("duration_s", 0.0)),
            group=str(data.get("group", "")),
        )


@attrs.frozen
class KernelReport:
    """Every check result of one kernel, and what is known about the guest."""

    kernel: str
    results: tuple[CheckResult, ...]
    release: str = ""
    accel: str = ""
    elapsed_s: float = 0.0

    def by_id(self) -> dict[str, CheckResult]:
        return {r.id: r for r in self.results}

    def count(self, status: Status) -> int:
        return sum(1 for r in self.results if r.status is status)

    @property
    def ok(self) -> bool:
        return bool(self.results) and not any(r.status.bad for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kernel": self.kernel,
            "release": self.release,
            "accel": self.accel,
            "elapsed_s": round(self.elapsed_s, 3),
            "summary": {s.value: self.count(s) for s in Status},
            "results": [r.to_dict() for r in self.results],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> KernelReport:
        return cls(
            kernel=str(data["kernel"]),
            results=tuple(CheckResult.from_dict(r) for r in data.get("results", ())),
            release=str(data.get("release", "")),
            accel=str(data.get("accel", "")),
            elapsed_s=float(data.get("elapsed_s", 0.0)),
        )


def _line(prefix: str, payload: Mapping[str, Any]) -> str:
    text = json.dumps(payload, separators=(",", ":"), sort_keys=True)
    return f"{prefix}{zlib.crc32(text.encode()):08x} {text}"


def result_line(result: CheckResult) -> str:
    """The console line of one result (no newline; JSON escapes keep it one line)."""
    return _line(RESULT_PREFIX, result.to_dict())


def begin_line(info: Mapping[str, Any]) -> str:
    return _line(BEGIN_PREFIX, info)


def end_line(count: int) -> str:
    return _line(END_PREFIX, {"count": count})


@attrs.frozen
class ConsoleResults:
    """What a guest's console said: its results, its self-description, and damage."""

    results: tuple[CheckResult, ...]
    info: dict[str, Any]
    began: bool
    ended: bool
    expected_count: int | None
    garbled: tuple[str, ...]

    @property
    def complete(self) -> bool:
        return self.began and self.ended and self.expected_count == len(self.results) and not self.garbled


def parse_console(lines: Iterable[str]) -> ConsoleResults:
    """Collect the result lines of a console log.

    The marker may follow other text on the same line (the kernel can print
    into the middle of the guest's output); a marked line whose JSON does
    not parse is kept in ``garbled``.
    """
    results: list[CheckResult] = []
    info: dict[str, Any] = {}
    began = ended = False
    expected: int | None = None
    garbled: list[str] = []
    for raw in lines:
        if "KDAMON-CHECK-" not in raw:
            continue
        m = _LINE.search(raw.rstrip("\r\n"))
        try:
            if m is None:
                raise ValueError("no checksum and JSON object after the marker")
            if int(m.group(2), 16) != zlib.crc32(m.group(3).encode()):
                raise ValueError("checksum mismatch: the line was interleaved with other output")
            payload = json.loads(m.group(3))
            if not isinstance(payload, dict):
                raise TypeError("not a JSON object")
            kind = m.group(1) + " "
            if kind == RESULT_PREFIX:
                results.append(CheckResult.from_dict(payload))
            elif kind == BEGIN_PREFIX:
                info, began = payload, True
            else:
                ended = True
                expected = int(payload["count"])
        except (ValueError, KeyError, TypeError):
            garbled.append(raw.strip())
    return ConsoleResults(tuple(results), info, began, ended, expected, tuple(garbled))
