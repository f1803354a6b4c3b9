"""The bundled hot/cold workload, in this process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kdamon.engine.ops.pagemap import (
    WrittenPageScanner,
    has_wp_async_memory,
    pagemap_scan_supported,
)
from kdamon.engine.ops.procfs import read_smaps
from kdamon.engine.uffd import AsyncWriteProtect
from kdamon.engine.workload import HotColdWorkload, WorkloadLayout, main
from kdamon.errors import EngineError

MiB = 1 << 20


def vma_of(addr: int) -> tuple[int, int, frozenset[str]]:
    for vma in read_smaps(os.getpid()):
        if vma.start <= addr < vma.end:
            return vma.start, vma.end, vma.flags
    raise AssertionError(f"{addr:#x} is not mapped")


def test_areas_are_separate_mappings_of_the_asked_sizes() -> None:
    with HotColdWorkload(MiB + 1, 3 * MiB) as workload:
        layout = workload.layout
        assert layout.hot_end - layout.hot_start == MiB + 4096  # rounded up to pages
        assert layout.cold_end - layout.cold_start == 3 * MiB
        assert vma_of(layout.hot_start)[:2] == (layout.hot_start, layout.hot_end)
        assert vma_of(layout.cold_start)[:2] == (layout.cold_start, layout.cold_end)
        assert workload.touch_hot(write=False) == (MiB + 4096) // 4096  # every page holds 1
        assert WorkloadLayout.from_json(layout.to_json()) == layout


def test_refuses_empty_areas() -> None:
    with pytest.raises(EngineError, match="at least one page"):
        HotColdWorkload(0, MiB)


def uffd_works() -> bool:
    try:
        AsyncWriteProtect().close()
    except EngineError:
        return False
    return pagemap_scan_supported()


@pytest.mark.skipif(not uffd_works(), reason="needs userfaultfd async write-protect (6.7+)")
def test_uffd_registration_makes_writes_visible_per_page() -> None:
    with HotColdWorkload(MiB, MiB, uffd=True) as workload:
        layout = workload.layout
        assert "uw" in vma_of(layout.hot_start)[2]
        scanner = WrittenPageScanner(os.getpid())
        try:
            assert scanner.written_and_rearm(layout.hot_start) is False
            workload.touch_hot()
            assert scanner.written_and_rearm(layout.hot_start) is True
            assert scanner.written_and_rearm(layout.hot_start) is False  # re-armed
            assert scanner.written_and_rearm(layout.cold_start) is False
        finally:
            scanner.close()


@pytest.mark.skipif(not uffd_works(), reason="needs userfaultfd async write-protect (6.7+)")
def test_registered_memory_is_found_while_the_userfaultfd_is_open() -> None:
    with HotColdWorkload(MiB, MiB):
        assert not has_wp_async_memory(os.getpid())
    with HotColdWorkload(MiB, MiB, uffd=True):
        assert has_wp_async_memory(os.getpid())
    assert not has_wp_async_memory(os.getpid())  # closing the userfaultfd unregisters


def test_program_writes_its_layout(tmp_path: Path) -> None:
    layout_file = tmp_path / "layout.json"
    assert main(["--hot", "64KiB", "--cold", "128KiB", "--seconds", "0",
                 "--layout", str(layout_file)]) == 0
    layout = WorkloadLayout.from_json(layout_file.read_text())
    assert (layout.pid, layout.hot_end - layout.hot_start) == (os.getpid(), 64 * 1024)
