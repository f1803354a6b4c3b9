"""Metric families built during one scrape, created on first use."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

__all__ = ["Families"]

_Family = GaugeMetricFamily | CounterMetricFamily


class Families:
    """Metric families created on first use, yielded in creation order."""

    def __init__(self) -> None:
        self._by_name: dict[str, _Family] = {}

    def gauge(self, name: str, doc: str, labels: Sequence[str], values: Sequence[str], value: float) -> None:
        self._add(GaugeMetricFamily, name, doc, labels, values, value)

    def counter(self, name: str, doc: str, labels: Sequence[str], values: Sequence[str], value: float) -> None:
        self._add(CounterMetricFamily, name, doc, labels, values, value)

    def _add(
        self, kind: type[_Family], name: str, doc: str, labels: Sequence[str], values: Sequence[str], value: float
    ) -> None:
        family = self._by_name.get(name)
        if family is None:
            family = self._by_name[name] = kind(name, doc, labels=list(labels))
        family.add_metric(list(values), value)

    def __iter__(self) -> Iterator[Metric]:
        return iter(self._by_name.values())
