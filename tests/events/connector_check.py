"""Whether the process connector can be had here (root, CONFIG_PROC_EVENTS, the initial network namespace)."""

from __future__ import annotations

import pytest

from kdamon.events.connector import ConnectorThread


def connector_or_skip() -> None:
    """Skip the calling test when the process connector cannot be subscribed to."""
    thread = ConnectorThread(lambda _msg: None, lambda: None)
    try:
        thread.start()
    except OSError as exc:
        pytest.skip(f"the process connector is unavailable here: {exc}")
    finally:
        thread.stop()
