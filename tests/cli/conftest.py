"""CLI host tests: the backend tests' helpers, and ``kdamon`` run in this process."""

from __future__ import annotations

import pytest

from backend_fixtures import kernel  # noqa: F401
from cli_helpers import Kdamon


@pytest.fixture
def kdamon(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Kdamon:
    return Kdamon(monkeypatch, capsys)
