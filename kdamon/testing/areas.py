"""The memory of a workload: anonymous areas of this process, each its own mapping.

Each area lies between inaccessible guard pages, so that the kernel never
merges it with its neighbours.  Only the standard library is used: a strided
``mmap`` slice assignment writes one byte per page in C, fast enough under
TCG emulation (and numpy takes seconds to import there).
"""

from __future__ import annotations

import ctypes
import mmap
import os
from collections.abc import Sequence
from types import TracebackType
from typing import Self

from kdamon.errors import KdamonError
from kdamon.testing.uffd import AsyncWriteProtect

__all__ = ["PAGE", "Areas"]

PAGE = mmap.PAGESIZE


class Areas:
    """Areas of the given sizes (rounded up to pages), every page written once; use as a context manager.

    With ``uffd=True`` they are registered for userfaultfd async write-protect
    (Linux 6.7+), so that a monitor sees the writes per page through
    ``PAGEMAP_SCAN``.
    """

    def __init__(self, sizes: Sequence[int], *, uffd: bool = False) -> None:
        sizes = [-(-s // PAGE) * PAGE for s in sizes]
        if not sizes or min(sizes) <= 0:
            raise KdamonError("every workload area needs at least one page; give sizes like 8MiB")
        # guard | area 0 | guard | area 1 | ... | guard
        self._map = mmap.mmap(-1, sum(sizes) + PAGE * (len(sizes) + 1), flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        view = ctypes.c_char.from_buffer(self._map)
        base = ctypes.addressof(view)
        del view  # an exported buffer would keep the map from closing
        libc = ctypes.CDLL(None, use_errno=True)
        self._offsets: list[tuple[int, int]] = []
        off = 0
        for size in [*sizes, 0]:
            if libc.mprotect(ctypes.c_void_p(base + off), ctypes.c_size_t(PAGE), 0) != 0:
                raise KdamonError(f"mprotect of a guard page failed: {os.strerror(ctypes.get_errno())}")
            off += PAGE
            if size:
                self._offsets.append((off, off + size))
                off += size
        self._base = base
        self._ones = {size: b"\x01" * (size // PAGE) for size in set(sizes)}
        for index in range(len(sizes)):
            self.touch(index)
        self._uffd: AsyncWriteProtect | None = None
        if uffd:
            self._uffd = AsyncWriteProtect()
            for start, end in self.ranges():
                self._uffd.register(start, end - start)
                self._uffd.write_protect(start, end - start)

    def ranges(self) -> tuple[tuple[int, int], ...]:
        """``[start, end)`` of each area, in order."""
        return tuple((self._base + a, self._base + b) for a, b in self._offsets)

    def touch(self, index: int, *, write: bool = True) -> int:
        """Write (or read) one byte in every page of area ``index``; a read returns the sum of the bytes read."""
        a, b = self._offsets[index]
        if write:
            self._map[a:b:PAGE] = self._ones[b - a]
            return 0
        return sum(self._map[a:b:PAGE])

    def close(self) -> None:
        if self._uffd is not None:
            self._uffd.close()
        self._map.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
