"""Fixtures of the report tests."""

from __future__ import annotations

import pytest

from kdamon.model.snapshot import Snapshot
from report_data import AREA_A, AREA_B, MIB, two_area_snapshot


@pytest.fixture
def moving_hot_band() -> list[Snapshot]:
    """Snapshots 0-4: A+10..20 MiB at the maximum (20); snapshots 5-9: B+0..5 MiB at half (10)."""
    first = [two_area_snapshot(i, [(AREA_A + 10 * MIB, AREA_A + 20 * MIB, 20)]) for i in range(5)]
    second = [two_area_snapshot(i, [(AREA_B, AREA_B + 5 * MIB, 10)]) for i in range(5, 10)]
    return first + second
