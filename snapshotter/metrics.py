"""Prometheus metrics of one snapshotter instance, on its own registry (tests run several),
served on `/metrics` as the projector's are (schemas/metrics_http.py).
"""

import time

from prometheus_client import CollectorRegistry, Counter, Gauge

from schemas.metrics_http import MetricsServer
from snapshotter.fold import BatchOutput

# The tables of `snapshotter_rows_written{table}`, in BatchOutput's order (`committed`);
# `comments` counts comment events (comment_threads and comments).
TABLES = ("letters", "letter_version", "collaboration", "comments", "snapshotter_letter_state")


class Metrics(MetricsServer):
    def __init__(self) -> None:
        super().__init__(CollectorRegistry())
        r = self.registry
        self.lag = Gauge(
            "snapshotter_lag_records",
            "End offset - committed position",
            ["topic", "partition"],
            registry=r,
        )
        # The lag keeps its last value while the log cannot be read: this shows how old it is.
        self.lag_measured = Gauge(
            "snapshotter_lag_measured_at_seconds",
            "Unix time the lag of the partitions owned was last measured (0: never)",
            registry=r,
        )
        # What the lag covers: an instance owning none (a spare) measures nothing, and its
        # `lag_measured` stops as a failing one's does; alerts tell them apart by this.
        self.partitions_owned = Gauge(
            "snapshotter_partitions_owned", "Partitions assigned now", ["topic"], registry=r
        )
        self.commits = Counter(
            "snapshotter_commits", "Batches committed with their position", registry=r
        )
        self.rows = Counter(
            "snapshotter_rows_written", "Rows written by commits", ["table"], registry=r
        )
        for table in TABLES:  # each at 0 from start: rate() sees it before its first row
            self.rows.labels(table)
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
        # Read at each scrape (snapshotter.consumer sets the function), as the gateway's
        # `gateway_letters_pending`: each update of such a letter costs a save and a load of it.
        self.letters_pending = Gauge(
            "snapshotter_letters_pending",
            "Cached letters whose document held pending parts (updates waiting on a missing"
            " dependency) at its last update or save",
            registry=r,
        )

    def committed(self, out: BatchOutput, *, batch: bool) -> None:
        """Count a commit's rows; `batch`: it moved its partition's position."""
        written = (out.letters, out.versions, out.audit, out.comments, out.states)
        for table, n in zip(TABLES, (len(rows) for rows in written), strict=True):
            if n:
                self.rows.labels(table).inc(n)
        if batch:
            self.commits.inc()
            self.last_commit.set(time.time())
            if out.quarantined:
                self.quarantined.inc(len(out.quarantined))
