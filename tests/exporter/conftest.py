"""The exporter's host tests read a fake DAMON tree: the kernel driver tests' emulation."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "kernel"))
