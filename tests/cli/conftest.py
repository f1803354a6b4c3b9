"""CLI host tests: the backend tests' helpers, and ``kdamon`` run in this process."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backend"))

from backend_fixtures import kernel  # noqa: E402,F401
from cli_helpers import Kdamon  # noqa: E402


@pytest.fixture
def kdamon(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Kdamon:
    return Kdamon(monkeypatch, capsys)
