"""Guest tests: they drive the real DAMON of a kdamon QEMU guest and run nowhere else.

Being in this folder is what makes a test a guest test: on the host every test collected from
here is skipped (users' tests mark theirs with the pytest plugin's ``damon_guest`` instead).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kdamon.testing.guest import in_guest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if in_guest():
        return
    skip = pytest.mark.skip(reason="guest test: runs inside a kdamon QEMU guest (kdamon vm run -- python3 -m pytest tests/guest)")
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(skip)
