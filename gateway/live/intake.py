"""Reading pauses, connection by connection, while too much waits for the log.

Peers hear an update as soon as it is accepted; the log gets it a little later, in the
appenders' batches (gateway/live/appender.py). When updates are accepted faster than the log
takes them (a saturated event loop, a slow disk or broker), what waits for the log grows without
bound, and with it memory and the window of delivered-but-unlogged edits: 2,000 connections at
10,000 updates/s grew by ~14 MB/s, and after a minute senders' acknowledgements came 50 s late
(docs/performance.md). Above `append_buffer_bytes` of unlogged entries, a connection that adds
to them stops reading once it has handled what it read, so TCP pushes back on its client (as
Kafka's producer blocks its callers when its `buffer.memory` is full); once the log has taken
half of it back, they all read again.

Per connection, not all at once: pausing every connection at the limit and resuming them all
together let the first few read after each resume fill the buffer again, and the rest went
unread for 20 s and more, until uvicorn closed them for unanswered pings. Now every connection
gets its read in each window, and one that sends nothing is never paused.
"""

from collections.abc import Callable

from eventlog.records import Entry
from gateway.metrics import Metrics

# What a waiting entry holds besides its value, so that many small updates count too. Measured
# with tracemalloc: a doc.update entry in the batcher's queue holds ~1,310 bytes of headers, the
# Entry, the sender's echo closure and the queue slot, plus a framed copy of its value (the
# echo), hence the value counted twice.
ENTRY_OVERHEAD = 1280
Pause = Callable[[bool], None]  # a connection's: stop (True) or resume (False) reading


def cost(entry: Entry) -> int:
    return 2 * len(entry.value) + ENTRY_OVERHEAD


class Intake:
    def __init__(self, limit_bytes: int, metrics: Metrics) -> None:
        self.limit, self.resume_at = limit_bytes, limit_bytes // 2
        self.unlogged = 0  # bytes (by `cost`) queued for the log or in flight
        self._held: set[Pause] = set()
        self._metrics = metrics
        metrics.unlogged_bytes.set_function(lambda: self.unlogged)  # both read when scraped
        metrics.intake_held.set_function(lambda: len(self._held))

    @property
    def full(self) -> bool:
        return self.unlogged > self.limit

    def hold(self, pause: Pause) -> None:
        """A connection handling a message while the intake is full: it reads no more (what
        it has read already is still handled) until the log has taken half back."""
        if pause not in self._held:
            if not self._held:
                self._metrics.intake_pauses.inc()
            self._held.add(pause)
            pause(True)

    def leave(self, pause: Pause) -> None:
        self._held.discard(pause)

    def queued(self, size: int) -> None:
        self.unlogged += size

    def released(self, size: int) -> None:
        """`size` bytes are no longer waiting: appended, or failed and handed to the rescue."""
        self.unlogged -= size
        if self._held and self.unlogged <= self.resume_at:
            held, self._held = self._held, set()
            for pause in held:
                pause(False)
