"""Prometheus metrics, one CollectorRegistry per app so several apps can share a process."""

from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric

from gateway.auth_refusals import REASONS

_FAST = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.connections = Gauge("gateway_connections", "Open WebSocket connections", registry=r)
        self.hocuspocus_sockets = Gauge(
            "gateway_hocuspocus_sockets",
            "Open sockets of the Hocuspocus framing (each authenticated document is a connection)",
            registry=r,
        )
        self.token_renewals = Counter(
            "gateway_token_renewals",
            "Sessions extended by a later token sent in-band (Hocuspocus token sync, auth.renew)",
            registry=r,
        )
        self.letters = Gauge("gateway_letters_loaded", "Letters held in memory", registry=r)
        # Its value is read at each scrape (gateway.live.rooms sets the function).
        self.letters_pending = Gauge(
            "gateway_letters_pending",
            "Letters held in memory whose document holds pending parts (updates waiting on a"
            " missing dependency, loaded from the log or a saved state), as of the scrape",
            registry=r,
        )
        self.messages_in = Tally("gateway_messages_in", "Inbound frames by type", "type", r)
        self.messages_out = Tally("gateway_messages_out", "Outbound frames by type", "type", r)
        self.refusals = Counter(
            "gateway_refusals", "Refused handshakes, frames and connections", ["reason"], registry=r
        )
        self.auth_refusals = Counter(
            "gateway_auth_refusals",
            "Refused tokens by reason (the caller is only told `unauthorized`)",
            ["reason"],
            registry=r,
        )
        for reason in REASONS:  # each at 0 from start: rate() and absent() see it before one
            self.auth_refusals.labels(reason)
        self.paced = Counter(
            "gateway_messages_paced",
            "Messages over their connection's frame rate that waited for it, the socket not"
            " read meanwhile (rate_messages_per_s; past rate_wait_max_s on end: 4429), and"
            " Hocuspocus documents refused for now that waited to be checked again",
            registry=r,
        )
        self.awareness_echoes = Counter(
            "gateway_awareness_echoes",
            "Awareness entries dropped as echoes: states the letter already holds, which"
            " y-websocket clients send back on receiving them",
            registry=r,
        )
        self.append_latency = Histogram(
            "gateway_append_seconds", "Log append latency", ["topic"], buckets=_FAST, registry=r
        )
        self.fanout_latency = Histogram(
            "gateway_fanout_seconds",
            "Time to queue one update to local peers",
            buckets=_FAST,
            registry=r,
        )
        self._append: dict[str, Histogram] = {}
        self.unlogged_bytes = Gauge(
            "gateway_unlogged_bytes",
            "Accepted entries waiting for the log, in bytes as gateway.live.intake counts them",
            registry=r,
        )
        self.intake_held = Gauge(
            "gateway_intake_held",
            "Connections not reading because too much waits for the log",
            registry=r,
        )
        self.intake_pauses = Counter(
            "gateway_intake_pauses",
            "Times connections began to be held because the log was behind",
            registry=r,
        )
        self.rescue_dropped = Counter(
            "gateway_rescue_dropped_records",
            "Unlogged entries the rescue dropped because the log refuses them for good (larger"
            " than the topic or broker takes); each is logged at ERROR",
            registry=r,
        )
        self.resync_parts = Counter(
            "gateway_resync_parts_taken",
            "Own parts of resyncs refused for repeating other users' unlogged edits (a gateway"
            " died before logging them) that were taken, alone or with others' held parts",
            registry=r,
        )
        # Here, not where they count (steno_collab/lock_restore.py): listed at 0 from the first
        # scrape in every configuration, so that dashboards tell "zero" from "missing".
        self.locks_auto_restores = Counter(
            "gateway_locks_auto_restores",
            "Restores of the section locks this gateway ran by itself (marker missing or stale)",
            registry=r,
        )
        self.locks_unrestored_found = Counter(
            "gateway_locks_unrestored_found",
            "Gates (free-section grants, renewals and releases of one's own lock, keyed creates,"
            " creates) that found the locks-restored marker missing or stale with"
            " STENO_LOCKS_AUTO_RESTORE=false: waiting for `steno-collab backfill locks`",
            registry=r,
        )
        self.load_latency = Histogram(
            "gateway_load_seconds", "Time to load a letter", buckets=_FAST, registry=r
        )
        self.unheld_reads = Histogram(
            "gateway_unheld_read_seconds",
            "Time to rebuild a letter not held here for reads (shared by concurrent requests)",
            buckets=_FAST,
            registry=r,
        )

    def sent(self, kind: str) -> None:
        counts = self.messages_out.counts  # once per frame per peer: a dict update, no lock
        counts[kind] = counts.get(kind, 0) + 1

    def received(self, kind: str) -> None:
        counts = self.messages_in.counts
        counts[kind] = counts.get(kind, 0) + 1

    def appended(self, topic: str, seconds: float) -> None:
        child = self._append.get(topic)
        if child is None:
            child = self._append[topic] = self.append_latency.labels(topic)
        child.observe(seconds)

    def refuse(self, reason: str) -> None:
        self.refusals.labels(reason).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class Tally:
    """A counter by one label kept in a plain dict and read by the registry at scrape time.

    For counts taken once per frame per peer on the event loop (10 frames per update at 10
    users a letter): a dict update costs ~120 ns, prometheus_client's Counter ~330 ns for a
    child bound in advance and ~1 us through `labels()`, as it takes a lock per `inc` (2-9 % of
    a core at 10,000 updates/s). The exposition is a Counter's (`<name>_total{label=...}`).
    """

    def __init__(self, name: str, documentation: str, label: str, registry: CollectorRegistry):
        self.name, self.documentation, self.label = name, documentation, label
        self.counts: dict[str, int] = {}
        registry.register(self)

    def describe(self) -> list[Metric]:
        return [CounterMetricFamily(self.name, self.documentation, labels=[self.label])]

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=[self.label])
        for value, count in list(self.counts.items()):  # a copy: scrapes may run in a thread
            family.add_metric([value], count)
        yield family
