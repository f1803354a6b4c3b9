"""Real boots of the default kernel: exit codes, panics, shares.  Each costs a few seconds under TCG."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kdamon.errors import GuestCrash
from kdamon.vm import run

pytestmark = pytest.mark.skipif(
    shutil.which("qemu-system-x86_64") is None, reason="QEMU is not installed (scripts/test.sh installs it)"
)


def test_exit_code_and_output_come_back(tmp_path: Path) -> None:
    (tmp_path / "hello.sh").write_text(
        "echo shared-$((6 * 7))\ncat /sys/kernel/mm/damon/admin/kdamonds/nr_kdamonds\nexit 3\n"
    )
    lines: list[str] = []
    result = run(["sh", str(tmp_path / "hello.sh")], share=[tmp_path], output=lines.append, timeout=300)
    assert result.exit_code == 3
    assert result.channel == "virtio"
    assert "shared-42\n" in lines and "0\n" in lines
    assert "Linux version" in result.dmesg


def test_guest_panic_fails_the_run_with_the_log() -> None:
    with pytest.raises(GuestCrash) as info:
        run(["sh", "-c", "echo c > /proc/sysrq-trigger"], timeout=300)
    log = Path(info.value.log_path)
    assert log.is_file() and "Kernel panic" in log.read_text()
    assert "Kernel panic" in str(info.value)


def test_without_virtio_console_the_exit_code_comes_over_the_serial_console() -> None:
    result = run(["sh", "-c", "exit 5"], virtio_results=False, timeout=300)
    assert (result.exit_code, result.channel) == (5, "console")
    assert result.dmesg == ""
