"""A fake tracefs for host tests: instances appear on mkdir, like the kernel's."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

from kdamon.kernel.sysfs_io import OsFs
from kdamon.trace.synth import FORMAT_TEXTS

HEADER_PAGE = (
    "\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;\n"
    "\tfield: local_t commit;\toffset:8;\tsize:8;\tsigned:1;\n"
    "\tfield: int overwrite;\toffset:8;\tsize:1;\tsigned:1;\n"
    "\tfield: char data;\toffset:16;\tsize:4080;\tsigned:1;\n"
)


class FakeTracefs(OsFs):
    """tracefs under ``root`` with ``cpus`` CPUs and the given DAMON events."""

    def __init__(self, root: Path, *, cpus: int = 2, events: tuple[str, ...] = tuple(FORMAT_TEXTS)) -> None:
        self.root, self.cpus, self.damon_events = root, cpus, events
        self.writes: list[tuple[str, str]] = []
        (root / "instances").mkdir(parents=True)
        (root / "events").mkdir()
        (root / "events" / "header_page").write_text(HEADER_PAGE)
        self.raw_data: dict[int, bytes] = {}  # cpu -> pages present when the instance is created
        self.text_data = ""
        self.overrun = {0: 0}

    def write(self, path: Path, data: bytes) -> None:
        self.writes.append((str(path.relative_to(self.root)), data.decode()))
        super().write(path, data)

    def mkdir(self, path: Path) -> None:
        if path.parent != self.root / "instances":
            raise OSError(errno.EPERM, "not an instance", str(path))
        path.mkdir()
        for name in ("buffer_size_kb", "tracing_on"):
            (path / name).write_text("0\n")
        (path / "trace_clock").write_text("[local] global counter uptime perf mono mono_raw boot\n")
        (path / "trace_pipe").write_text(self.text_data)
        for name in self.damon_events:
            ev = path / "events" / "damon" / name
            ev.mkdir(parents=True)
            (ev / "format").write_text(FORMAT_TEXTS[name])
            (ev / "enable").write_text("0\n")
            (ev / "filter").write_text("none\n")
        for cpu in range(self.cpus):
            d = path / "per_cpu" / f"cpu{cpu}"
            d.mkdir(parents=True)
            (d / "trace_pipe_raw").write_bytes(self.raw_data.get(cpu, b""))
            (d / "stats").write_text(f"entries: 0\noverrun: {self.overrun.get(cpu, 0)}\ncommit overrun: 0\n")

    def rmdir(self, path: Path) -> None:
        shutil.rmtree(path)
