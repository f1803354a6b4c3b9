"""Shared test set-up: the host safety net of ``_host_guard`` fails any test that opened a guarded
path; property tests have no per-example deadline."""

from __future__ import annotations

from collections.abc import Iterator

import _host_guard
import pytest
from hypothesis import settings

# Hypothesis fails an example that takes over 200 ms by default: a timed assertion, which a loaded
# machine fails (seen: 264 ms for a first example under load 5.6 on 2 CPUs, 42 ms on its rerun).
settings.register_profile("kdamon", deadline=None)
settings.load_profile("kdamon")


@pytest.fixture(autouse=True)
def _no_host_damon_access() -> Iterator[None]:
    before = len(_host_guard.violations)
    yield
    if len(_host_guard.violations) > before:
        pytest.fail(f"this test opened guarded host paths: {_host_guard.violations[before:]}")
