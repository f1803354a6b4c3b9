"""Serve a :class:`~kdamon.exporter.collector.DamonCollector` over HTTP (``/metrics``)."""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIServer

import attrs
from prometheus_client import CollectorRegistry, start_http_server

from kdamon.errors import KdamonError
from kdamon.exporter.collector import DamonCollector

__all__ = ["DEFAULT_ADDRESS", "DEFAULT_PORT", "Exporter", "serve"]

DEFAULT_ADDRESS = "127.0.0.1"
DEFAULT_PORT = 9795


@attrs.frozen
class Exporter:
    """A running exporter: its HTTP server, thread and registry."""

    server: WSGIServer
    thread: threading.Thread
    registry: CollectorRegistry

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/metrics"

    def shutdown(self) -> None:
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def serve(collector: DamonCollector, address: str = DEFAULT_ADDRESS, port: int = DEFAULT_PORT) -> Exporter:
    """Serve ``collector`` (only it: no process or platform metrics) in a daemon thread.

    ``port`` 0 picks a free port (see ``Exporter.url``).
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    try:
        server, thread = start_http_server(port, addr=address, registry=registry)
    except OSError as exc:
        raise KdamonError(
            f"cannot listen on {address}:{port} ({exc.strerror}); choose another --port or --address"
        ) from exc
    return Exporter(server, thread, registry)
