"""Guest tests: they drive the real DAMON of a kdamon QEMU guest and run nowhere else."""

from __future__ import annotations

import os

import pytest

IN_GUEST = os.environ.get("KDAMON_GUEST") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if IN_GUEST:
        return
    skip = pytest.mark.skip(reason="guest test: runs inside a kdamon QEMU guest (kdamon vm run -- python3 -m pytest tests/guest)")
    for item in items:
        if "tests/guest/" in str(item.fspath):
            item.add_marker(skip)
