"""Reading from clients pauses while too much waits for the log.

Peers hear an update as soon as it is accepted; the log gets it a little later, in the
appenders' batches (gateway/live/appender.py). When updates are accepted faster than the log
takes them (a saturated event loop, a slow disk or broker), what waits for the log grows without
bound, and with it memory and the window of delivered-but-unlogged edits: 2,000 connections at
10,000 updates/s grew by ~14 MB/s, and after a minute senders' acknowledgements came 50 s late
(docs/performance.md). Above `append_buffer_bytes` of unlogged entries every connection stops
reading, so TCP pushes back on the clients, as Kafka's producer blocks its callers when its
`buffer.memory` is full; once the log has taken half of it back, they read again.
"""

from collections.abc import Callable

from eventlog.records import Entry
from gateway.metrics import Metrics

# An entry's Python objects besides its value (headers, closures, queue slots): what it costs
# while it waits, so that many small updates count too.
ENTRY_OVERHEAD = 512
Pause = Callable[[bool], None]  # a connection's: stop (True) or resume (False) reading


def cost(entry: Entry) -> int:
    return len(entry.value) + ENTRY_OVERHEAD


class Intake:
    def __init__(self, limit_bytes: int, metrics: Metrics) -> None:
        self.limit, self.resume_at = limit_bytes, limit_bytes // 2
        self.unlogged = 0  # bytes (by `cost`) queued for the log or in flight
        self.paused = False
        self._metrics = metrics
        metrics.unlogged_bytes.set_function(lambda: self.unlogged)  # both read when scraped
        metrics.intake_paused.set_function(lambda: int(self.paused))
        self._readers: set[Pause] = set()

    def join(self, pause: Pause) -> None:
        """A connection that reads: told at once if reading is paused now."""
        self._readers.add(pause)
        if self.paused:
            pause(True)

    def leave(self, pause: Pause) -> None:
        self._readers.discard(pause)

    def queued(self, size: int) -> None:
        self.unlogged += size
        if not self.paused and self.unlogged > self.limit:
            self._set(True)

    def released(self, size: int) -> None:
        """`size` bytes are no longer waiting: appended, or failed and handed to the rescue."""
        self.unlogged -= size
        if self.paused and self.unlogged <= self.resume_at:
            self._set(False)

    def _set(self, paused: bool) -> None:
        self.paused = paused
        if paused:
            self._metrics.intake_pauses.inc()
        for pause in list(self._readers):
            pause(paused)
