"""`/metrics` of a consumer process (projector, snapshotter): a registry served over HTTP.

prometheus_client's WSGI app on a threaded server, as its `start_http_server` does, but each
connection gets a socket timeout: that one's handler waits for a request as long as the client
likes, a thread per connection, so silent connections piled up threads without bound. Here
because the services may import schemas, never each other.
"""

import socket
import threading
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

IDLE_TIMEOUT_S = 10.0  # a connection that sends nothing for this long is closed


class MetricsBindError(Exception):
    """/metrics cannot be served where configured: the port is taken, not ours to bind (below
    1024 unprivileged), out of range, or the host is no address of this machine."""

    def __init__(self, host: str, port: int, reason: str) -> None:
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        super().__init__(f"cannot serve /metrics on {where}: {reason}")
        self.where, self.reason = where, reason

    def naming(self, setting: str) -> str:
        """One line for the operator: the settings that chose the address, and why it failed."""
        return f"cannot serve /metrics on {self.where} ({setting}, STENO_HOST): {self.reason}"


class MetricsServer:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._server: WSGIServer | None = None

    def serve(self, host: str, port: int, idle_timeout_s: float = IDLE_TIMEOUT_S) -> int:
        """Serve /metrics; returns the bound port. MetricsBindError if it cannot be bound."""

        class Handler(WSGIRequestHandler):
            timeout = idle_timeout_s  # socketserver sets it on each accepted socket

            def log_message(self, format: str, *args: Any) -> None:
                pass  # a scrape every few seconds is not news

        class Server(ThreadingWSGIServer):
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

        try:
            server = make_server(host, port, make_wsgi_app(self.registry), Server, Handler)
        except OSError as exc:  # in use, not permitted, unknown host (socket.gaierror)
            raise MetricsBindError(host, port, exc.strerror or str(exc)) from exc
        except OverflowError as exc:  # a port outside 0-65535
            raise MetricsBindError(host, port, str(exc)) from exc
        threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
        self._server = server
        return int(server.server_address[1])

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
