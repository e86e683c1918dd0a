"""Prometheus metrics, one CollectorRegistry per app so several apps can share a process."""

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_FAST = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.connections = Gauge("gateway_connections", "Open WebSocket connections", registry=r)
        self.letters = Gauge("gateway_letters_loaded", "Letters held in memory", registry=r)
        self.messages_in = Counter(
            "gateway_messages_in", "Inbound frames by type", ["type"], registry=r
        )
        self.messages_out = Counter(
            "gateway_messages_out", "Outbound frames by type", ["type"], registry=r
        )
        self.refusals = Counter(
            "gateway_refusals", "Refused handshakes, frames and connections", ["reason"], registry=r
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
        self._out: dict[str, Counter] = {}
        self._in: dict[str, Counter] = {}
        self._append: dict[str, Histogram] = {}
        self.load_latency = Histogram(
            "gateway_load_seconds", "Time to load a letter", buckets=_FAST, registry=r
        )

    def sent(self, kind: str) -> None:
        # labels() costs a lock and a dict lookup; this runs once per frame per peer.
        child = self._out.get(kind)
        if child is None:
            child = self._out[kind] = self.messages_out.labels(kind)
        child.inc()

    def received(self, kind: str) -> None:
        child = self._in.get(kind)
        if child is None:
            child = self._in[kind] = self.messages_in.labels(kind)
        child.inc()

    def appended(self, topic: str, seconds: float) -> None:
        child = self._append.get(topic)
        if child is None:
            child = self._append[topic] = self.append_latency.labels(topic)
        child.observe(seconds)

    def refuse(self, reason: str) -> None:
        self.refusals.labels(reason).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
