"""What every part of one gateway instance shares: settings, the log, stores, metrics, its id."""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eventlog.records import Entry, Log
from gateway.auth import Claims, Verifier
from gateway.collab.flagged import Flagged
from gateway.live.appender import Batcher
from gateway.live.buckets import KeyedBuckets, UserBuckets, user_key
from gateway.live.intake import Intake
from gateway.live.ownership import Scans
from gateway.live.resyncs import HoldBudget
from gateway.metrics import Metrics
from gateway.preparse import Limits
from gateway.transport import EndOfTick
from schemas.envelope import encode_event, new_event, raw_headers
from schemas.events import Payload, Topic
from schemas.settings import Settings

log = logging.getLogger(__name__)
HEADERS_SLACK = 4096  # more than a record's key and headers (envelope ids, a user's name) take


def _no_restore() -> None:
    """Nothing to wake: no Redis, or an app the app shell did not compose (it sets the wake)."""


@dataclass
class Context:
    settings: Settings
    log: Log
    metrics: Metrics
    gateway_id: str
    limits: Limits
    redis: Any = None  # redis.asyncio.Redis (bytes responses) or None
    pg: Any = None  # asyncpg pool or None
    # Handler of app messages (type 100) from opted-in clients: (conn, room, JSON bytes).
    app_messages: Callable[[Any, Any, bytes], None] | None = None
    # Sees comment events of other instances, held letter or not (live mention notices).
    remote_comments: Callable[[Any], None] | None = None
    # Wakes the restore of the section locks and create claims (steno_collab/lock_restore.py,
    # set by the app shell, which the gateway may not import): a gate found the restored marker
    # missing or stale (gateway/restored.py `gated`, `keep`).
    wake_restore: Callable[[], None] = _no_restore
    end_of_tick: EndOfTick = field(default_factory=EndOfTick)  # batched socket writes
    _batchers: dict[Topic, Batcher] = field(default_factory=dict)  # batched appends
    intake: Intake = field(init=False)  # reading pauses while too much waits for the log
    update_bytes: UserBuckets = field(init=False)  # bytes of updates a user may append
    # Item splits a user's updates may cost pycrdt (only costly ones look it up: most cost 0).
    split_cost: KeyedBuckets = field(init=False)
    rest_requests: KeyedBuckets = field(init=False)  # REST requests a user may make
    handshakes: KeyedBuckets = field(init=False)  # WebSocket handshakes a user may make
    verifier: Verifier = field(init=False)  # tokens, with the identity provider's keys
    # Bytes of refused resyncs' parts all letters hold together (gateway/live/resyncs.py).
    held_resyncs: HoldBudget = field(default_factory=HoldBudget)
    # Reads of letters' logs for their client-id owners running at once (ownership.py).
    owner_scans: Scans = field(default_factory=Scans)
    # This instance's last resolve or reopen of each comment thread, until a store has it
    # (gateway/collab/flagged.py): its own, so two gateways in one process do not share it.
    flagged: Flagged = field(default_factory=Flagged)
    # The largest update the log was not seen to refuse, once it refused one for good (a topic
    # whose max.message.bytes is below what start-up checked): larger ones are refused (4413)
    # before a room takes them. Instance-wide, as the letters topics share their config.
    update_ceiling: int | None = None

    def __post_init__(self) -> None:
        s = self.settings
        self.intake = Intake(s.append_buffer_bytes, self.metrics)
        self.update_bytes = UserBuckets(s.update_bytes_per_s, s.update_bytes_burst)
        self.split_cost = KeyedBuckets(s.split_cost_per_s, s.split_cost_burst)
        self.rest_requests = KeyedBuckets(s.rest_requests_per_s, s.rest_requests_burst)
        self.handshakes = KeyedBuckets(s.handshakes_per_s, s.handshakes_burst)
        self.verifier = Verifier(s)

    def budget(self, buckets: KeyedBuckets, claims: Claims) -> float | None:
        """None if the caller may go on (one taken from their bucket), else seconds to wait.
        Service tokens have no budget: they are the product's own backend (one "user" for every
        firm, creating letters in bulk), not a person whose stolen token could hog an instance."""
        return None if claims.role == "service" else buckets.admit(user_key(claims))

    def learn_refused(self, size: int) -> None:
        """The log refused for good a record whose value has `size` bytes (gateway/live/rescue.py):
        its resyncs would fail the letter again for everyone (4503) on each reconnect."""
        # The log counts the record whole: an update a little smaller, under its own headers
        # (another user's name, ids), is as large a record. Refused from a margin below.
        ceiling = max(size - 1 - HEADERS_SLACK, 0)
        if self.update_ceiling is not None and ceiling >= self.update_ceiling:
            return
        self.update_ceiling = ceiling
        log.warning(
            "the log refused a record of %d bytes for good: updates of %d bytes or more are refused"
            " (4413) until this instance restarts; raise the topic's max.message.bytes",
            size,
            ceiling + 1,
        )

    def batcher(self, topic: Topic) -> Batcher:
        """The appends of `topic` for all letters of this instance (gateway/live/appender.py)."""
        found = self._batchers.get(topic)
        if found is None:
            settings = self.settings
            found = self._batchers[topic] = Batcher(
                self.log,
                settings.topic(topic),
                self.metrics,
                settings.append_timeout_s,
                settings.append_linger_ms / 1000,
                self.intake,
            )
        return found

    async def close_batchers(self) -> None:
        """Shutdown, once every room flushed its appends."""
        for batcher in self._batchers.values():
            await batcher.close()

    def entry(
        self,
        letter_id: str,
        payload: Payload | bytes,
        *,
        firm: str,
        user: str,
        conn: str = "",
        type: str | None = None,
        name: str = "",
    ) -> Entry:
        """A log entry for an event of this gateway (the key is the letter id, given at append);
        `name`: the writer's, on a raw update's record (schemas/envelope.py NAME_HEADER)."""
        if type is not None and isinstance(payload, bytes):  # every Yjs/awareness update
            headers = raw_headers(
                letter_id, type, firm=firm, user=user, conn=conn, gw=self.gateway_id, name=name
            )
            return Entry(payload, headers)
        event = new_event(
            letter_id, payload, firm=firm, user=user, conn=conn, gw=self.gateway_id, type=type
        )
        _key, value, headers = encode_event(event)
        return Entry(value, headers)
