"""``kdamon exporter``: DAMON's state and results as Prometheus metrics (read-only)."""

from kdamon.exporter.access import AccessWatches
from kdamon.exporter.collector import DamonCollector, tried_summary
from kdamon.exporter.server import DEFAULT_ADDRESS, DEFAULT_PORT, Exporter, serve

__all__ = ["DEFAULT_ADDRESS", "DEFAULT_PORT", "AccessWatches", "DamonCollector", "Exporter", "serve", "tried_summary"]
