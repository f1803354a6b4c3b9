"""Backend host tests: fixtures from backend_fixtures (a Host on temporary trees)."""

from backend_fixtures import kernel  # noqa: F401
