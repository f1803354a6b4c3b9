"""The exporter's host tests read a fake DAMON tree and a fake tracefs: the kernel driver tests' emulations."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet import Fleet, make_fleet


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    """kdamon's paddr kdamond, another tool's vaddr one and DAMON_STAT, with trace pages for each."""
    with make_fleet(tmp_path) as fleet:
        yield fleet
