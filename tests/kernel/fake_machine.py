"""DAMON sysfs and tracefs emulated together, as one machine's file system, for host tests.

Each tracefs instance kdamon creates gets the ring-buffer pages of its
kdamond (instances are named after the kdamond's pid), as the kernel
filters an instance's events on that pid.
"""

from __future__ import annotations

import threading
from pathlib import Path

from fake_damon import FakeDamonFs
from fake_tracefs import FakeTracefs


class RoutedFs(FakeDamonFs):
    """DAMON sysfs emulated, and tracefs under ``tracing``: each instance gets its kdamond's pages."""

    def __init__(self, base: Path, tracing: FakeTracefs, by_pid: dict[int, bytes], version: str = "7.3") -> None:
        super().__init__(base, version)
        self.tracing = tracing
        self.by_pid = by_pid
        self._mkdir_lock = threading.Lock()  # watches make their instances in parallel threads

    def _traced(self, path: Path) -> bool:
        return path.is_relative_to(self.tracing.root)

    def read(self, path: Path) -> str:
        return self.tracing.read(path) if self._traced(path) else super().read(path)

    def write(self, path: Path, data: bytes) -> None:
        if self._traced(path):
            self.tracing.write(path, data)
        else:
            super().write(path, data)

    def mkdir(self, path: Path) -> None:
        if not self._traced(path):
            super().mkdir(path)
        with self._mkdir_lock:
            pid = int(path.name.rsplit("-", 1)[1])  # instances are named kdamon-<own pid>-<index>-<kdamond pid>
            self.tracing.raw_data = {0: self.by_pid.get(pid, b"")}
            self.tracing.mkdir(path)

    def rmdir(self, path: Path) -> None:
        if self._traced(path):
            self.tracing.rmdir(path)
        else:
            super().rmdir(path)
