"""``kdamon exporter``: DAMON's state and results as Prometheus metrics (read-only)."""

from kdamon.exporter.collector import DamonCollector, Temperature, region_temperatures
from kdamon.exporter.server import DEFAULT_ADDRESS, DEFAULT_PORT, Exporter, serve

__all__ = ["DEFAULT_ADDRESS", "DEFAULT_PORT", "DamonCollector", "Exporter", "Temperature",
           "region_temperatures", "serve"]
