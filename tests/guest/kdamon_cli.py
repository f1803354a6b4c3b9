"""kdamon's command line as a user runs it: each command its own process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

__all__ = ["Kdamon"]


class Kdamon:
    """``python3 -m kdamon ARGS...`` with a state directory of its own; ``check``: it must succeed."""

    def __init__(self, state_dir: Path) -> None:
        self.env = dict(os.environ, KDAMON_STATE_DIR=str(state_dir))

    def __call__(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "kdamon", *argv], env=self.env, capture_output=True, text=True, timeout=300
        )
        if check:
            assert done.returncode == 0, done.stderr
        return done
