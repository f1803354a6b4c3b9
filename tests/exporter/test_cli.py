"""``kdamon exporter`` as a command: serves the trees its environment names, stops on SIGTERM,
prints its shipped files, refuses bad thresholds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml

from fake_damon import FakeDamonFs  # tests/kernel, see conftest.py
from kdamon.cli.exporter import SHIPPED_KINDS
from kdamon.cli.main import main
from kdamon.exporter.shipped import SHIPPED


def test_the_command_serves_metrics_and_stops_on_sigterm(tmp_path: Path) -> None:
    fake = FakeDamonFs(tmp_path / "admin", "6.12")
    fake.write(fake.base / "kdamonds" / "nr_kdamonds", b"1")
    env = dict(
        os.environ,
        KDAMON_SYSFS_ROOT=str(tmp_path / "admin"),
        KDAMON_MODULE_ROOT=str(tmp_path / "module"),
        KDAMON_TRACEFS_ROOT=str(tmp_path / "tracing"),
        KDAMON_STATE_DIR=str(tmp_path / "run"),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "kdamon", "exporter", "--port", "0"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stderr is not None
        said = [proc.stderr.readline()]
        while said[-1] and "serving" not in said[-1]:
            said.append(proc.stderr.readline())
        assert said[-1].startswith("kdamon exporter: serving http://127.0.0.1:"), said
        assert any("no tracefs is mounted" in line for line in said), said
        with urllib.request.urlopen(said[-1].split()[-1], timeout=30) as response:
            text = response.read().decode()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
        proc.wait()
    assert 'damon_kdamond_running{kdamond="sysfs:0"} 0.0' in text
    assert 'damon_kdamond_info{kdamond="sysfs:0",ops="",owner="free"} 1.0' in text
    assert "damon_exporter_tracefs_available 0.0" in text


def test_the_shipped_files_are_printed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["exporter", "--print-file", "dashboard"]) == 0
    assert json.loads(capsys.readouterr().out)["title"]
    assert main(["exporter", "--print-file", "rules"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["groups"]
    assert main(["exporter", "--print-file", "unit"]) == 0
    assert "ExecStart=" in capsys.readouterr().out
    with pytest.raises(SystemExit) as refused:
        main(["exporter", "--print-file", "grafana"])
    assert refused.value.code == 2
    assert "invalid choice: 'grafana' (choose from 'dashboard', 'rules', 'unit')" in capsys.readouterr().err


def test_the_choices_of_print_file_are_the_shipped_files() -> None:
    assert SHIPPED_KINDS == tuple(SHIPPED)


@pytest.mark.parametrize("hot", ["0", "101%"])
def test_a_hot_threshold_out_of_range_is_refused(hot: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["exporter", "--hot", hot]) == 2
    assert "hot" in capsys.readouterr().err
