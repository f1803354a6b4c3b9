"""Property: whatever valid configuration is applied reads back the same (7.3 file set)."""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings

from fake_damon import make_driver
from kdamon.kernel.sysfs_plan import canonical
from kdamon.model import Context, Kdamond

# Reuse the model's own strategies (tests/model/model_strategies.py).
_spec = importlib.util.spec_from_file_location(
    "model_strategies", Path(__file__).parent.parent / "model" / "model_strategies.py"
)
assert _spec is not None and _spec.loader is not None
strategies = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("model_strategies", strategies)
_spec.loader.exec_module(strategies)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ctx=strategies.contexts(), refresh_ms=strategies.uints)
def test_read_back_equals_applied(ctx: Context, refresh_ms: int) -> None:
    kdamond = Kdamond(contexts=(ctx,), refresh_ms=refresh_ms)
    with tempfile.TemporaryDirectory() as tmp:
        driver, _ = make_driver(Path(tmp), "7.3")
        driver.apply(0, kdamond)
        assert driver.read(0) == canonical(kdamond, layered=True)
