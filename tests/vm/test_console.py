"""Failure detection on recorded console text, the cpio writer and kernel images."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest

from kdamon.errors import GuestError
from kdamon.vm.cpio import CpioWriter
from kdamon.vm.kernels import bzimage_version
from kdamon.vm.qemu import kernel_failures
from kdamon.vm.runner import _kernel_cmdline

WARN_TEXT = """\
[    3.101] Run /init as init process
[   12.731] ------------[ cut here ]------------
[   12.731] WARNING: CPU: 1 PID: 117 at mm/damon/core.c:1234 damon_set_attrs+0x51/0x60
[   12.732] Modules linked in:
PASSED tests/guest/test_x.py::test_warning_text WARNING: not a kernel line
"""
OOPS_TEXT = (
    "[  40.000001] Oops: general protection fault, probably for non-canonical address 0xdead: 0000 [#1] SMP PTI\n"
)
BUG_TEXT = "[   7.5] BUG: kernel NULL pointer dereference, address: 0000000000000008\n"
PANIC_TEXT = "[   9.25] Kernel panic - not syncing: sysrq triggered crash\n"
CLEAN_TEXT = "[ 1.0] Run /init as init process\nWARNING: this is user space output\n[ 2.0] reboot: Power down\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (WARN_TEXT, "WARNING: CPU: 1 PID: 117"),
        (OOPS_TEXT, "Oops: general protection fault"),
        (BUG_TEXT, "BUG: kernel NULL pointer dereference"),
        (PANIC_TEXT, "Kernel panic - not syncing"),
    ],
)
def test_kernel_failures_found(text: str, expected: str) -> None:
    found = kernel_failures(text)
    assert found and found[0].startswith(expected)


def test_user_space_warning_lines_are_not_kernel_failures() -> None:
    assert kernel_failures(CLEAN_TEXT) == []
    assert len(kernel_failures(WARN_TEXT)) == 1


def test_tcg_cmdline_forces_pti() -> None:
    assert "pti=on" in _kernel_cmdline("tcg", ())
    assert "pti=on" not in _kernel_cmdline("kvm", ())
    assert _kernel_cmdline("tcg", ("damon_stat.enabled=N",))[-1] == "damon_stat.enabled=N"


@pytest.mark.skipif(shutil.which("cpio") is None, reason="needs the cpio tool to read the archive back")
def test_cpio_archive_reads_back(tmp_path: Path) -> None:
    buf = io.BytesIO()
    w = CpioWriter(buf)
    w.file("/a/b/c.txt", b"hello", mode=0o640, mtime=1_000_000)
    w.symlink("/a/link", "b/c.txt")
    w.char_device("/dev/console", 5, 1)
    w.close()
    assert w.size % 512 == 0
    (tmp_path / "x.cpio").write_bytes(buf.getvalue())
    out = subprocess.run(["cpio", "-itv"], input=buf.getvalue(), capture_output=True, check=True).stdout.decode()
    names = [line.split()[-1] if "->" not in line else line.split()[-3] for line in out.splitlines()]
    assert names == ["a", "a/b", "a/b/c.txt", "a/link", "dev", "dev/console"]
    assert (
        "hello"
        in subprocess.run(
            ["cpio", "-i", "--to-stdout", "a/b/c.txt"], input=buf.getvalue(), capture_output=True, check=True
        ).stdout.decode()
    )


def test_bzimage_version_is_read_from_the_header(tmp_path: Path) -> None:
    image = bytearray(0x1000)
    image[0x202:0x206] = b"HdrS"
    image[0x20E:0x210] = (0x400).to_bytes(2, "little")
    image[0x600 : 0x600 + 40] = b"6.13.0-rc1-damon (dev@box) #1 SMP\0".ljust(40, b"\0")
    path = tmp_path / "bzImage"
    path.write_bytes(bytes(image))
    assert bzimage_version(path) == "6.13.0-rc1-damon"


def test_not_a_bzimage_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "vmlinux"
    path.write_bytes(b"\x7fELF" + b"\0" * 0x400)
    with pytest.raises(GuestError, match="not an x86 bzImage"):
        bzimage_version(path)
