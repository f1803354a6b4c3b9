"""A workload's areas, in this process, and the workload program's layout file."""

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
from kdamon.errors import EngineError, KdamonError
from kdamon.testing.areas import Areas
from kdamon.testing.uffd import AsyncWriteProtect
from kdamon.testing.workloads import Layout, child_layout_path, main

MiB = 1 << 20


def vma_of(addr: int) -> tuple[int, int, frozenset[str]]:
    for vma in read_smaps(os.getpid()):
        if vma.start <= addr < vma.end:
            return vma.start, vma.end, vma.flags
    raise AssertionError(f"{addr:#x} is not mapped")


def test_areas_are_separate_mappings_of_the_asked_sizes() -> None:
    with Areas([MiB + 1, 3 * MiB]) as areas:
        hot, cold = areas.ranges()
        assert hot[1] - hot[0] == MiB + 4096  # rounded up to pages
        assert cold[1] - cold[0] == 3 * MiB
        assert vma_of(hot[0])[:2] == hot
        assert vma_of(cold[0])[:2] == cold
        assert areas.touch(0, write=False) == (MiB + 4096) // 4096  # every page holds 1


def test_refuses_empty_areas() -> None:
    with pytest.raises(KdamonError, match="at least one page"):
        Areas([0, MiB])


def uffd_works() -> bool:
    try:
        AsyncWriteProtect().close()
    except EngineError:
        return False
    return pagemap_scan_supported()


@pytest.mark.skipif(not uffd_works(), reason="needs userfaultfd async write-protect (6.7+)")
def test_uffd_registration_makes_writes_visible_per_page() -> None:
    with Areas([MiB, MiB], uffd=True) as areas:
        hot, cold = areas.ranges()
        assert "uw" in vma_of(hot[0])[2]
        scanner = WrittenPageScanner(os.getpid())
        try:
            assert scanner.written_and_rearm(hot[0]) is False
            areas.touch(0)
            assert scanner.written_and_rearm(hot[0]) is True
            assert scanner.written_and_rearm(hot[0]) is False  # re-armed
            assert scanner.written_and_rearm(cold[0]) is False
        finally:
            scanner.close()


@pytest.mark.skipif(not uffd_works(), reason="needs userfaultfd async write-protect (6.7+)")
def test_registered_memory_is_found_while_the_userfaultfd_is_open() -> None:
    with Areas([MiB, MiB]):
        assert not has_wp_async_memory(os.getpid())
    with Areas([MiB, MiB], uffd=True):
        assert has_wp_async_memory(os.getpid())
    assert not has_wp_async_memory(os.getpid())  # closing the userfaultfd unregisters


def test_program_writes_its_layout(tmp_path: Path) -> None:
    layout_file = tmp_path / "layout.json"
    assert main(["hot_cold", "--sizes", "64KiB", "128KiB", "--seconds", "0.1", "--layout", str(layout_file)]) == 0
    layout = Layout.from_json(layout_file.read_text())
    assert (layout.pid, layout.kind, layout.uffd) == (os.getpid(), "hot_cold", False)
    assert (layout.hot[1] - layout.hot[0], layout.cold[1] - layout.cold[0]) == (64 * 1024, 128 * 1024)
    assert not child_layout_path(layout_file, 0).exists()
    assert child_layout_path(layout_file, 1) == tmp_path / "layout.json.child1"
