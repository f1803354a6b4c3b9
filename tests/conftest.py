"""Shared test set-up: the host safety net of ``_host_guard`` fails any test that opened a guarded path; no hypothesis deadline."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import settings

import _host_guard

# No test is timed: on a loaded machine any example can take longer than hypothesis's default deadline.
settings.register_profile("kdamon", deadline=None)
settings.load_profile("kdamon")


@pytest.fixture(autouse=True)
def _no_host_damon_access() -> Iterator[None]:
    before = len(_host_guard.violations)
    yield
    if len(_host_guard.violations) > before:
        pytest.fail(f"this test opened guarded host paths: {_host_guard.violations[before:]}")
