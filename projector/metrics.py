"""Prometheus metrics of one projector instance, on its own registry (tests run several).

Served by prometheus_client's WSGI app on a threaded server, as `start_http_server` does, but
each connection gets a socket timeout: that one's handler waits for a request as long as the
client likes, a thread per connection, so silent connections piled up threads without bound.
"""

import socket
import threading
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

IDLE_TIMEOUT_S = 10.0  # a connection that sends nothing for this long is closed

_SIZES = (1, 10, 50, 100, 500, 1000, 5000, 20000)


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.folded = Counter(
            "projector_events_folded", "Events folded into Redis", ["type"], registry=r
        )
        self.poison = Counter(
            "projector_poison_records", "Records skipped as undecodable", ["topic"], registry=r
        )
        self.batch_records = Histogram(
            "projector_batch_records", "Records per Redis write", buckets=_SIZES, registry=r
        )
        self.batch_letters = Histogram(
            "projector_batch_letters", "Letters per Redis write", buckets=_SIZES, registry=r
        )
        self.fold_seconds = Histogram(
            "projector_fold_seconds", "Decode + fold + write of one batch", registry=r
        )
        self.lag = Gauge(
            "projector_lag_records", "End offset - position", ["topic", "partition"], registry=r
        )
        self.rebuilds = Counter(
            "projector_rebuilds", "Partitions replayed from their start", ["topic"], registry=r
        )
        self.reloads = Counter(
            "projector_letter_reloads", "Letters reloaded after their keys expired", registry=r
        )
        self.stale_connections = Counter(
            "projector_stale_connections", "Connections dropped: gateway dead", registry=r
        )

    def serve(self, host: str, port: int, idle_timeout_s: float = IDLE_TIMEOUT_S) -> int:
        """Serve /metrics; returns the bound port."""

        class Handler(WSGIRequestHandler):
            timeout = idle_timeout_s  # socketserver sets it on each accepted socket

            def log_message(self, format: str, *args: Any) -> None:
                pass  # a scrape every few seconds is not news

        class Server(ThreadingWSGIServer):
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

        server = make_server(host, port, make_wsgi_app(self.registry), Server, Handler)
        threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
        self._server = server
        return int(server.server_address[1])

    def close(self) -> None:
        server = getattr(self, "_server", None)
        if server is not None:
            server.shutdown()
            server.server_close()
