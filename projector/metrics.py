"""Prometheus metrics of one projector instance, on its own registry (tests run several),
served on `/metrics` (schemas/metrics_http.py).
"""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from schemas.metrics_http import MetricsServer

_SIZES = (1, 10, 50, 100, 500, 1000, 5000, 20000)


class Metrics(MetricsServer):
    def __init__(self) -> None:
        super().__init__(CollectorRegistry())
        r = self.registry
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
        # The lag keeps its last value while the log cannot be read: this shows how old it is.
        self.lag_measured = Gauge(
            "projector_lag_measured_at_seconds",
            "Unix time the lag of the partitions owned was last measured (0: never)",
            registry=r,
        )
        # What the lag covers: an instance owning none (a spare) measures nothing, and its
        # `lag_measured` stops as a failing one's does; alerts tell them apart by this.
        self.partitions_owned = Gauge(
            "projector_partitions_owned", "Partitions assigned now", ["topic"], registry=r
        )
        self.rebuilds = Counter(
            "projector_rebuilds", "Partitions replayed from their start", ["topic"], registry=r
        )
        self.reloads = Counter(
            "projector_letter_reloads", "Letters reloaded after their keys expired", registry=r
        )
        # Not a gauge of letters: the projector keeps no letter between batches (their states
        # are read from Redis for each), so it counts the folds that pay for pending parts.
        self.pending_folds = Counter(
            "projector_pending_folds",
            "Folds of a letter's updates that saved its state holding pending parts (updates"
            " waiting on a missing dependency): each later fold looks through them again",
            registry=r,
        )
        self.stale_connections = Counter(
            "projector_stale_connections", "Connections dropped: gateway dead", registry=r
        )
