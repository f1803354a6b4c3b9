"""procfs parsing, the per-page checks and paddr against fake /proc and /sys trees."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from kdamon.engine.core import Callbacks, Monitor
from kdamon.engine.ops.checks import PageIdleCheck, SoftDirtyCheck
from kdamon.engine.ops.idle import KPF_COMPOUND_HEAD, KPF_COMPOUND_TAIL, KPF_LRU
from kdamon.engine.ops.paddr import PaddrOps, biggest_system_ram
from kdamon.engine.ops.pagemap import PM_PRESENT, PM_SOFT_DIRTY
from kdamon.engine.ops.probe import probe
from kdamon.engine.ops.procfs import process_alive, read_maps, read_smaps
from kdamon.errors import EngineError
from kdamon.model.config import Context, Target
from kdamon.model.snapshot import Snapshot

PID = 4242
SMAPS = """\
55d0c0000000-55d0c0021000 rw-p 00000000 00:00 0                          [heap]
Size:                132 kB
Referenced:           12 kB
VmFlags: rd wr mr mw me ac
7f0000000000-7f0000800000 rw-p 00000000 00:00 0
Size:               8192 kB
Referenced:            0 kB
VmFlags: rd wr mr mw me ac uw
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
Size:                  4 kB
Referenced:            0 kB
VmFlags: ex
"""


def fake_process(root: Path, *, state: str = "S") -> Path:
    directory = root / str(PID)
    directory.mkdir(parents=True)
    (directory / "smaps").write_text(SMAPS)
    (directory / "maps").write_text("".join(line + "\n" for line in SMAPS.splitlines() if "-" in line.split()[0]))
    (directory / "stat").write_text(f"{PID} (my prog) {state} 1 1 1 0 -1\n")
    (directory / "clear_refs").write_text("")
    return directory


def test_maps_and_smaps_leave_out_the_gate_area(tmp_path: Path) -> None:
    fake_process(tmp_path)
    assert read_maps(PID, tmp_path) == [(0x55D0C0000000, 0x55D0C0021000), (0x7F0000000000, 0x7F0000800000)]
    heap, anon = read_smaps(PID, tmp_path)
    assert (heap.name, heap.referenced_kib, "uw" in heap.flags) == ("[heap]", 12, False)
    assert (anon.name, anon.referenced_kib, "uw" in anon.flags) == ("", 0, True)


@pytest.mark.parametrize(("state", "alive"), [("S", True), ("R", True), ("Z", False)])
def test_process_alive(tmp_path: Path, state: str, alive: bool) -> None:
    fake_process(tmp_path, state=state)
    assert process_alive(PID, tmp_path) is alive
    assert not process_alive(PID + 1, tmp_path)


def write_u64s(path: Path, entries: dict[int, int]) -> None:
    """A sparse file of 64-bit entries (pagemap, kpageflags): ``entries`` maps indexes to values."""
    with open(path, "wb") as table:
        for index, entry in entries.items():
            table.seek(index * 8)
            table.write(entry.to_bytes(8, "little"))


def test_soft_dirty_check_clears_then_reads_bit_55(tmp_path: Path) -> None:
    directory = fake_process(tmp_path)
    write_u64s(directory / "pagemap", {0x10: PM_PRESENT | PM_SOFT_DIRTY, 0x11: PM_PRESENT})
    check = SoftDirtyCheck(PID, tmp_path)
    addrs = np.array([0x10 * 4096 + 5, 0x11 * 4096, 0x12 * 4096], dtype=np.int64)
    check.prepare(addrs)
    assert (directory / "clear_refs").read_text() == "4\n"
    assert check.check(addrs).tolist() == [True, False, False]
    check.close()


def idle_bitmap(root: Path) -> Path:
    bitmap = root / "sys" / "kernel" / "mm" / "page_idle" / "bitmap"
    bitmap.parent.mkdir(parents=True)
    bitmap.write_bytes(bytes(8 * 32))
    return bitmap


def clear_idle_word(bitmap: Path, word: int) -> None:
    """What the kernel does when the frames of that bitmap word are accessed."""
    with open(bitmap, "r+b") as raw:
        raw.seek(word * 8)
        raw.write(bytes(8))


def test_page_idle_check_marks_frames_idle_and_reads_them_back(tmp_path: Path) -> None:
    directory = fake_process(tmp_path)
    write_u64s(directory / "pagemap", {0x10: PM_PRESENT | 70, 0x11: PM_PRESENT | 3, 0x12: 0, 0x13: PM_PRESENT | 130})
    write_u64s(tmp_path / "kpageflags", {70: KPF_LRU, 3: KPF_LRU, 130: 0})
    bitmap = idle_bitmap(tmp_path)
    check = PageIdleCheck(PID, tmp_path, tmp_path / "sys")
    addrs = np.array([0x10 * 4096, 0x11 * 4096, 0x12 * 4096, 0x13 * 4096], dtype=np.int64)
    check.prepare(addrs)
    words = bitmap.read_bytes()
    assert int.from_bytes(words[8:16], "little") == 1 << (70 - 64)
    assert int.from_bytes(words[:8], "little") == 1 << 3
    assert int.from_bytes(words[16:24], "little") == 1 << (130 - 128)
    clear_idle_word(bitmap, 1)  # frame 70 accessed
    clear_idle_word(bitmap, 2)  # frame 130 reads "not idle" too: off the LRU, the kernel cannot track it
    # idle still, unmapped, or off the LRU: not accessed
    assert check.check(addrs).tolist() == [True, False, False, False]
    check.close()


def test_page_idle_check_tracks_a_huge_page_through_its_head_frame(tmp_path: Path) -> None:
    directory = fake_process(tmp_path)
    head = 512  # a 2 MiB transparent huge page: frames 512..1023
    write_u64s(directory / "pagemap", {0x10: PM_PRESENT | (head + 100), 0x11: PM_PRESENT | head})
    write_u64s(
        tmp_path / "kpageflags",
        {head: KPF_LRU | KPF_COMPOUND_HEAD} | {pfn: KPF_COMPOUND_TAIL for pfn in range(head + 1, head + 512)},
    )
    bitmap = idle_bitmap(tmp_path)
    check = PageIdleCheck(PID, tmp_path, tmp_path / "sys")
    tail_only = np.array([0x10 * 4096], dtype=np.int64)
    check.prepare(tail_only)
    assert int.from_bytes(bitmap.read_bytes()[head // 8 : head // 8 + 8], "little") == 1  # the head's bit
    assert check.check(tail_only).tolist() == [False]  # still idle
    clear_idle_word(bitmap, head // 64)
    assert check.check(np.array([0x10 * 4096, 0x11 * 4096], dtype=np.int64)).tolist() == [True, True]
    check.close()


def test_probe_explains_a_missing_idle_page_tracking(tmp_path: Path) -> None:
    result = probe(os.getpid(), sys_root=tmp_path)
    reasons = dict(result.rejected)
    assert "CONFIG_IDLE_PAGE_TRACKING" in reasons["page_idle"]
    assert result.kind in ("uffd", "soft_dirty", "smaps")


def test_paddr_without_idle_page_tracking_says_so(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="CONFIG_IDLE_PAGE_TRACKING"):
        PaddrOps(sys_root=tmp_path)


IOMEM = """\
00000000-00000fff : Reserved
00001000-0009fbff : System RAM
000a0000-000fffff : Reserved
00100000-bffdffff : System RAM
  01000000-01ffffff : Kernel code
100000000-63fffffff : System RAM
"""


def test_biggest_system_ram(tmp_path: Path) -> None:
    (tmp_path / "iomem").write_text(IOMEM)
    assert biggest_system_ram(tmp_path) == (0x100000000, 0x640000000)
    (tmp_path / "iomem").write_text("00000000-00000000 : System RAM\n")
    with pytest.raises(EngineError, match="root"):
        biggest_system_ram(tmp_path)


def test_paddr_monitors_the_biggest_system_ram_in_addr_units(tmp_path: Path) -> None:
    (tmp_path / "iomem").write_text(IOMEM)
    (tmp_path / "kpageflags").write_bytes(bytes(8 * 16))
    bitmap = tmp_path / "sys" / "kernel" / "mm" / "page_idle" / "bitmap"
    bitmap.parent.mkdir(parents=True)
    bitmap.write_bytes(b"")
    seen: list[Snapshot] = []
    context = Context(ops="paddr", addr_unit=4, targets=(Target(),))
    monitor = Monitor(
        context,
        PaddrOps(tmp_path, tmp_path / "sys"),
        seed=1,
        callbacks=Callbacks(after_aggregation=lambda m: seen.extend(m.snapshots())),
    )
    monitor.run_virtual(300_000)
    assert len(seen) == 3
    regions = list(seen[-1].states())
    assert (regions[0].start, regions[-1].end) == (0x100000000 // 4, 0x640000000 // 4)
    # frames not on an LRU list are never "accessed", as in damon_pa_young()
    assert all(r.nr_accesses == 0 for r in regions)
    assert bitmap.stat().st_size > 0, "sampled frames must have been marked idle"
