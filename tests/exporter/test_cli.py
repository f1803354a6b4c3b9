"""``kdamon exporter`` as a command: serves a tree given on the command line, refuses bad thresholds."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from fake_damon import FakeDamonFs  # tests/kernel, see conftest.py
from kdamon.cli.main import main


def test_the_command_serves_metrics(tmp_path: Path) -> None:
    fake = FakeDamonFs(tmp_path / "admin", "6.12")
    fake.write(fake.base / "kdamonds" / "nr_kdamonds", b"1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "kdamon", "exporter", "--port", "0", "--sysfs-root", str(tmp_path / "admin"),
         "--module-root", str(tmp_path / "module")],
        stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert line.startswith("kdamon exporter: serving http://127.0.0.1:"), line
        with urllib.request.urlopen(line.split()[-1], timeout=30) as response:
            text = response.read().decode()
    finally:
        proc.terminate()
        proc.wait()
    assert 'damon_kdamond_running{kdamond="0"} 0.0' in text
    assert 'damon_kdamond_info{kdamond="0",ops="",owner="free"} 1.0' in text


@pytest.mark.parametrize("percent", ["0", "101"])
def test_hot_percent_out_of_range_is_refused(percent: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["exporter", "--hot-percent", percent]) == 2
    assert "--hot-percent: must be between 1 and 100" in capsys.readouterr().err
