"""Prometheus metrics of one snapshotter instance, on its own registry (tests run several).

Served as the projector serves its own (projector/metrics.py; services do not import each
other): prometheus_client's WSGI app on a threaded server whose connections time out when
silent, so idle connections cannot pile up handler threads.
"""

import socket
import threading
import time
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from snapshotter.fold import BatchOutput

IDLE_TIMEOUT_S = 10.0  # a connection that sends nothing for this long is closed


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.lag = Gauge(
            "snapshotter_lag_records",
            "End offset - committed position",
            ["topic", "partition"],
            registry=r,
        )
        self.commits = Counter(
            "snapshotter_commits", "Batches committed with their position", registry=r
        )
        self.rows = Counter(
            "snapshotter_rows_written", "Rows written by commits", ["table"], registry=r
        )
        self.retries = Counter(
            "snapshotter_retries",
            "Restarts from the stored positions after a retryable failure",
            ["reason"],
            registry=r,
        )
        self.quarantined = Counter(
            "snapshotter_quarantined_records", "Records skipped as poison, committed", registry=r
        )
        self.last_commit = Gauge(
            "snapshotter_last_commit_timestamp_seconds", "Time of the last commit", registry=r
        )
        self.cached_letters = Gauge(
            "snapshotter_cached_letters", "Letters' working states held in memory", registry=r
        )

    def committed(self, out: BatchOutput, *, batch: bool) -> None:
        """Count a commit's rows; `batch`: it moved its partition's position."""
        for table, n in (
            ("letters", len(out.letters)),
            ("letter_version", len(out.versions)),
            ("collaboration", len(out.audit)),
            ("comments", len(out.comments)),  # comment events (comment_threads, comments)
            ("snapshotter_letter_state", len(out.states)),
        ):
            if n:
                self.rows.labels(table).inc(n)
        if batch:
            self.commits.inc()
            self.last_commit.set(time.time())
            if out.quarantined:
                self.quarantined.inc(len(out.quarantined))

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
