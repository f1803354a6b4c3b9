"""The deployment files shipped with the exporter: a Grafana dashboard, Prometheus alert rules,
a hardened systemd unit (``kdamon exporter --print-file KIND`` prints one)."""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable

__all__ = ["SHIPPED", "shipped_file"]

SHIPPED = {
    "dashboard": "grafana-dashboard.json",
    "rules": "prometheus-rules.yml",
    "unit": "kdamon-exporter.service",
}
"""Each kind of shipped file and its name in ``kdamon/exporter/deploy/``."""


def shipped_file(kind: str) -> Traversable:
    """The shipped file of ``kind`` (a key of :data:`SHIPPED`)."""
    return files("kdamon.exporter") / "deploy" / SHIPPED[kind]
