"""Connections of dead gateways: the sweep that finds them, logs their `session.left`, drops them.

A gateway that dies (kill -9, OOM, host loss) never logs `session.left` for its connections.
The projector's sweep notices the death (README "Operations": stale connections) and appends
those events itself, built from its connection records, so every consumer of the log (the
snapshotter's session-end versions, the audit, other gateways' collaborators) hears of it.
Only then are the connections dropped from Redis, in a write fenced by the consumer (`commit`).

Such a session ends when its gateway was last seen, not when the sweep cleans it up (a minute
or more later, overlapping the user's reconnection through another gateway): the envelope's
`ts` is the dead gateway's last heartbeat, and `duration_ms` runs up to it. The record's own
timestamp is the log's append time. Estimated: the key's lapse as this instance first saw it
(later after a restart, a rebalance or a Redis outage), and a gateway may live up to a beat
(10 s) past its last one.
"""

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import replace

from eventlog import Entry, Log, LogError
from projector.fold import drop_connections
from projector.metrics import Metrics
from projector.state import LetterState
from projector.store import Store, Write, views
from schemas import Event, SessionLeft, UserRef, encode_event, new_event
from schemas.events import GATEWAY_GONE_REASON
from schemas.keys import ALIVE_TTL_S

logger = logging.getLogger(__name__)
GONE = GATEWAY_GONE_REASON  # the reason, followed by the dead gateway's id
LEFT_RETRY_S = 300  # a dead gateway's session.left is retried this long before giving up
ALIVE_TTL_MS = ALIVE_TTL_S * 1000  # the key lapses this long after the last beat

Commit = Callable[[Sequence[Write]], Awaitable[object]]


class StaleSweep:
    """One projector instance's sweep. Remembers since when each gateway's alive key has been
    missing, and since when each connection's `session.left` has been refused by the log."""

    def __init__(
        self,
        store: Store,
        log: Log,
        topic: str,
        metrics: Metrics,
        *,
        stale_after_s: float,
        gw: str,
        log_left: bool,
        retry_s: float,
    ) -> None:
        """`topic`: the letters topic; `gw`: the envelope's `gw` of what the sweep appends;
        `log_left` False (a read-only log): connections are dropped without their session.left."""
        self.store, self.log, self.topic, self.metrics = store, log, topic, metrics
        self.stale_after_s, self.gw, self.log_left, self.retry_s = (
            stale_after_s, gw, log_left, retry_s,
        )  # fmt: skip
        self._unlogged: dict[str, float] = {}  # conn -> first failed session.left append
        # gateway -> when its alive key was first seen missing: monotonic s, wall-clock ms
        self._missing: dict[str, tuple[float, int]] = {}

    async def sweep(self, partitions: Iterable[int], commit: Commit) -> None:
        """Log `session.left` for the connections of dead gateways in the letters of
        `partitions` (of the letters topic), then drop them through `commit`."""
        partition_of = {
            lid: p for p in sorted(partitions) for lid in await self.store.live_letters(p)
        }
        loaded = await self.store.load(partition_of)
        states = {lid: s for lid, s in loaded.items() if s is not None}
        dead = await self._dead_gateways(states.values())
        writes = []
        for lid, state in states.items():
            conns = {c for c, f in state.connections.items() if f["gateway"] in dead}
            # Logged first, dropped after: a connection whose session.left the log refused
            # stays in our state, so the next sweep finds it and tries again.
            if conns and await self._log_left(state, conns, dead):
                before = views(state)
                drop_connections(state, conns)
                self.metrics.stale_connections.inc(len(conns))
                writes.append(Write(before, state, partition_of[lid]))
        if writes:
            await commit(writes)
            logger.info("dropped the connections of dead gateway(s) %s", sorted(dead))
        await self.store.forget_live(
            {lid: p for lid, p in partition_of.items() if lid not in states}
        )

    async def _log_left(self, state: LetterState, conns: set[str], dead: dict[str, int]) -> bool:
        """Append the `session.left` a dead gateway could not log for `conns`; False if the log
        refused it. Our own fold of it later finds the connections gone: a no-op. Appended twice
        (a sweep of another instance after a rebalance, before this drop was folded), the second
        changes nothing: the snapshotter ignores a session.left for a session it does not hold.
        `dead`: gateway -> its last heartbeat (ms), when each connection ended."""
        if not self.log_left:
            return True
        entries = left_entries(state, conns, gw=self.gw, last_seen_ms=dead)
        try:
            await self.log.append(self.topic, state.letter_id.encode(), entries)
        except LogError as exc:
            # Retried at the next sweeps, but not for ever: a log that refuses us for good (a
            # Kafka ACL that lets the projector read only) must not leave dead users present.
            now = time.monotonic()
            first = min(self._unlogged.setdefault(c, now) for c in conns)
            if now - first < self.retry_s:
                logger.warning(
                    "session.left for %s of %s not logged, retrying at the next sweep: %s",
                    sorted(conns), state.letter_id, exc,
                )  # fmt: skip
                return False
            logger.error(
                "session.left for %s of %s not logged for %d s, dropped without it: %s",
                sorted(conns), state.letter_id, self.retry_s, exc,
            )  # fmt: skip
        for conn in conns:
            self._unlogged.pop(conn, None)
        return True

    async def _dead_gateways(self, states: Iterable[LetterState]) -> dict[str, int]:
        """Gateways of these connections whose alive key has been missing `stale_after_s`, with
        their last heartbeat (ms since the epoch): the key's lapse, as first seen, less its TTL.
        (A projector restarted meanwhile first sees it later: no earlier than that, then.)"""
        gateways = sorted({c["gateway"] for s in states for c in s.connections.values()} - {""})
        alive = await self.store.alive_gateways(gateways)
        now = (time.monotonic(), time.time_ns() // 1_000_000)
        self._missing = {gw: self._missing.get(gw, now) for gw in gateways if gw not in alive}
        return {
            gw: wall - ALIVE_TTL_MS
            for gw, (t, wall) in self._missing.items()
            if now[0] - t >= self.stale_after_s
        }


def left_events(
    state: LetterState, conns: Iterable[str], *, gw: str, last_seen_ms: Mapping[str, int]
) -> list[Event]:
    """The `session.left` of each of `conns` (connections of `state`), as their gateway would
    have logged it when it died: user (name and colour as they joined), role (records stored
    before it was kept have none: ""). It ends at `last_seen_ms` of its gateway (not before it
    began): the envelope's `ts`, and `duration_ms` since `connectedAt`. The envelope's `gw` is
    `gw`, the appender; the dead gateway is named in the reason."""
    events = []
    for conn in sorted(conns):
        record = state.connections[conn]
        connected = int(record["connectedAt"])
        ended = max(last_seen_ms[record["gateway"]], connected)
        user = record["userId"]
        named = state.users.get(user, {})
        payload = SessionLeft(
            conn_id=conn,
            user=UserRef(id=user, name=named.get("name", ""), color=named.get("color", "")),
            role=record.get("role", ""),
            reason=f"{GONE}: {record['gateway']}"[:200],
            duration_ms=ended - connected,
        )
        firm = state.meta.get("firm_id") or record["firmId"]
        event = new_event(state.letter_id, payload, firm=firm, user=user, conn=conn, gw=gw)
        events.append(replace(event, envelope=replace(event.envelope, ts=ended)))
    return events


def left_entries(
    state: LetterState, conns: Iterable[str], *, gw: str, last_seen_ms: Mapping[str, int]
) -> list[Entry]:
    """`left_events` as log entries of the letters topic (the key is the letter id)."""
    entries = []
    for event in left_events(state, conns, gw=gw, last_seen_ms=last_seen_ms):
        _key, value, headers = encode_event(event)
        entries.append(Entry(value, headers))
    return entries
