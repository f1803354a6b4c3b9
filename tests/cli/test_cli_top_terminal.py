"""``kdamon top`` full screen in a real terminal (tmux), on an engine kdamond: keys, redraws, a clean exit."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kdamon.backend.host import ENV_VARS, HostPaths

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux (apt-get install tmux)")

WORKLOAD = [sys.executable, "-m", "kdamon.testing.workloads", "hot_cold", "--sizes", "1MiB", "8MiB", "--uffd"]


def wait_for(what: str, check: Callable[[], bool], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_top_in_tmux(tmp_path: Path) -> None:
    paths = HostPaths.under(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]), NO_COLOR="1")
    env.update({var: str(getattr(paths, field)) for field, var in ENV_VARS.items()})
    layout = tmp_path / "layout.json"
    workload = subprocess.Popen([*WORKLOAD, "--seconds", "120", "--layout", str(layout)])
    socket = str(tmp_path / "tmux.sock")

    def tmux(*argv: str) -> str:
        return subprocess.run(["tmux", "-S", socket, *argv], capture_output=True, text=True, check=True, env=env).stdout

    try:
        wait_for("the workload", layout.exists)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "kdamon",
                "start",
                "--backend",
                "engine",
                "--target-pid",
                str(workload.pid),
                "--sample",
                "2ms",
                "--aggr",
                "20ms",
            ],
            env=env,
            check=True,
        )
        done = tmp_path / "top.exit"
        tmux(
            "new-session",
            "-d",
            "-x",
            "110",
            "-y",
            "36",
            f"{sys.executable} -m kdamon top 2>{tmp_path / 'top.err'}; echo $? > {done}; sleep 60",
        )
        wait_for("the heatmap", lambda: "heatmap: last" in tmux("capture-pane", "-p"))
        screen = tmux("capture-pane", "-p")
        assert "kdamon top  engine:0 (vaddr) pid" in screen and "regions by hot" in screen
        assert "coldest (idle longest)" in screen and "\x1b" not in screen
        tmux("send-keys", "s")
        wait_for("the age order", lambda: "regions by age" in tmux("capture-pane", "-p"))
        tmux("send-keys", "n")
        wait_for("the switch message", lambda: "no other kdamond runs" in tmux("capture-pane", "-p"))
        tmux("send-keys", "q")
        wait_for("top to exit", done.exists)
        assert done.read_text().strip() == "0", (tmp_path / "top.err").read_text()
        assert "watched engine:0 for" in (tmp_path / "top.err").read_text()
        assert "kdamon top" not in tmux("capture-pane", "-p"), "the alternate screen was not left"
    finally:
        subprocess.run(["tmux", "-S", socket, "kill-server"], capture_output=True, env=env)
        subprocess.run([sys.executable, "-m", "kdamon", "stop"], env=env, capture_output=True)
        workload.kill()
        workload.wait()
