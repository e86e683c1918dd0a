"""Prometheus metrics of one projector instance, on its own registry (tests run several)."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

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

    def serve(self, host: str, port: int) -> int:
        """Serve /metrics; returns the bound port."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self._server = server
        return int(server.server_address[1])

    def close(self) -> None:
        server = getattr(self, "_server", None)
        if server is not None:
            server.shutdown()
            server.server_close()
