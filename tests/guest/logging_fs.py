"""The real file system under kdamon's sysfs driver, remembering what was written."""

from __future__ import annotations

from pathlib import Path

from kdamon.kernel.sysfs_io import OsFs

__all__ = ["LoggingFs"]


class LoggingFs(OsFs):
    """The real file system, remembering what was written."""

    def __init__(self) -> None:
        self.writes: list[tuple[Path, bytes]] = []

    def write(self, path: Path, data: bytes) -> None:
        self.writes.append((path, data))
        super().write(path, data)
