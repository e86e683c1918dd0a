"""One letter in memory: its Yjs document, presence, connections and append queues.

Accepting an update is synchronous: apply to the document, queue the append, hand it to local
peers, so the log's order is the order updates were accepted. The sender hears its own update
only once the append succeeded (the acknowledgement). If an append fails, the room drops its
state and closes every connection with 4503: the clients still hold their edits and resync them
on reconnect, and what the room had accepted but not logged is appended again by the instance
(gateway/live/rescue.py), so nothing is lost and no peer is left holding unlogged structs.
"""

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from pycrdt import Doc, merge_updates

from eventlog.errors import LogError
from eventlog.records import Entry
from gateway import outgoing, preparse
from gateway.auth import Claims
from gateway.context import Context
from gateway.errors import LOG_UNAVAILABLE, MALFORMED, TOO_LARGE, TRY_AGAIN_LATER, Refused
from gateway.inbound import Inbound
from gateway.live import loader
from gateway.live.ownership import Ownership, new_clients
from gateway.live.presence import Presence, Throttle, stamp, user_stamp
from gateway.live.resyncs import Held, HeldResyncs, carries, own_part, still_adds
from gateway.preparse import DocShape, ProtocolError, UpdateInfo
from gateway.transport import binary_frame
from schemas.envelope import Event
from schemas.events import (
    LOAD_FAILED_REASON,
    LOG_FAILED_REASON,
    SessionJoined,
    SessionLeft,
    Topic,
    UserRef,
)
from schemas.ystate import pending_parts, with_pending

log = logging.getLogger(__name__)
PRESENCE_INTERVAL_S = 0.1  # at most one awareness record per connection per 100 ms
Own = tuple[bytes, UpdateInfo]  # a refused resync's own part, pre-parsed


class Peer(Protocol):
    id: str
    events: bool
    joined_at: float
    client_ids: set[int]  # Yjs client ids this connection has written under
    # The sync handshake of Hocuspocus' providers, not y-websocket's: no step 1 of ours when it
    # joins, our step 2 and then our step 1 in answer to its step 1, and its step 2 acknowledged
    # like an update. Its providers count every acknowledgement (2.x and 3.x below 0 too).
    hocuspocus_sync: bool
    # The name its doc.update records carry: a REST writer's, whom no session.joined names
    # (gateway/live/writes.py); "" for a connection, which its join names.
    author: str

    @property
    def claims(self) -> Claims: ...
    def send(self, data: bytes, kind: str, frame: bytes | None = None) -> None: ...
    def send_update(self, update: bytes, frame: bytes | None = None) -> None: ...
    def acknowledge(self, update: bytes, frame: bytes | None = None) -> None: ...
    def close(self, code: int, reason: str) -> None: ...
    async def renew_with(self, token: str) -> str | None: ...


# Rooms hears of a room that left memory: a failed one passes what it accepted but never logged.
OnGone = Callable[["Room", list[Entry]], None]


class Room:
    def __init__(self, ctx: Context, letter_id: str, firm_id: str, on_gone: OnGone):
        self.ctx, self.letter_id, self.firm_id, self._on_gone = ctx, letter_id, firm_id, on_gone
        self.doc: Doc[Any] = Doc()
        # Clocks, type depths and the root's family the pre-parser checks updates against.
        self.shape = DocShape(ctx.settings.doc_field)
        self.presence = Presence(self._presence_expired)
        # Who may write under which client id.
        self.owners = Ownership(letter_id, ctx.redis, ctx.owner_scans)
        # Refused resyncs' own parts (gateway/live/resyncs.py), within the gateway's budget.
        self.held = HeldResyncs(ctx.limits, ctx.held_resyncs)
        self.conns: set[Peer] = set()
        # Bytes of the loaded state plus every update accepted since: an upper bound of the
        # document's size (deletions are not subtracted) that costs nothing to keep.
        self.size = 0
        # What of the loaded state, and of the updates heard from the log since (`apply_remote`),
        # the document holds pending (gateway/live/loader.py): sent with every sync step 2, so a
        # peer holds it pending too and integrates it when the update it waits for arrives, as
        # this document does.
        self._unsettled: list[bytes] = []
        self.unsettled_seen = 0.0  # when `unsettled` last looked (monotonic)
        self.failed = False
        self.closing = False
        self.closed = asyncio.Event()
        self._pending: list[Event] | None = []  # remote events seen while loading
        key = letter_id.encode()
        self.letters = ctx.batcher(Topic.LETTERS).appender(key, self.fail)
        self.presence_log = ctx.batcher(Topic.PRESENCE).appender(key, self._presence_failed)
        self._throttle = Throttle(PRESENCE_INTERVAL_S, self._flush_presence)
        self._loading = asyncio.create_task(self._load(), name=f"load:{letter_id}")

    # -- lifecycle -----------------------------------------------------------------------------

    async def _load(self) -> None:
        started = time.perf_counter()
        loaded = await loader.load(
            self.ctx.settings, self.ctx.log, self.letter_id, self.ctx.redis, self.ctx.pg
        )
        if loaded.state:
            field = self.ctx.settings.doc_field
            self.shape = await loader.shape(loaded.state, field)  # large: in a thread
            self.doc.apply_update(loaded.state)
            self._unsettled = list(loaded.pending)
        self.size = len(loaded.state)
        # The log is the record of who owns which client id (read at once without Redis; with
        # it, only if Redis lost owners: gateway/live/ownership.py).
        ctx = self.ctx
        self.owners.rebuild(
            lambda: loader.writes(ctx.settings, ctx.log, self.letter_id, loaded, ctx.pg),
            self.shape.state_vector(),
        )
        pending, self._pending = self._pending or [], None
        for event in pending:
            try:
                self.apply_remote(event)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # another instance's bad record must not fail the load
                log.warning("letter %s: remote event refused: %r", self.letter_id, exc)
        self.ctx.metrics.load_latency.observe(time.perf_counter() - started)

    async def ready(self) -> None:
        """Wait for the load; Refused(4503) when it failed (`log_unavailable`: the log is
        unreachable; `load_failed`: something else) or was stopped (shutdown)."""
        try:
            await asyncio.shield(self._loading)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if not self._loading.cancelled() or (task is not None and task.cancelling()):
                raise  # the caller was cancelled, not the load
            raise Refused(LOG_UNAVAILABLE, "draining") from None
        except Exception as exc:
            # Only a log that cannot be read is `log_unavailable`; anything else (a record the
            # load cannot apply) is named as what it is, with the same close code (README).
            reason = "log_unavailable" if isinstance(exc, LogError) else "load_failed"
            log.warning("loading %s failed (%s): %r", self.letter_id, reason, exc)
            if not self.failed:
                self._drop(reason, LOAD_FAILED_REASON)
            raise Refused(LOG_UNAVAILABLE, reason) from None
        if self.failed:
            raise Refused(LOG_UNAVAILABLE, "log_unavailable")

    def fail(self, exc: BaseException, unlogged: Sequence[Entry] = ()) -> None:
        """An append failed: forget this state, make every client reconnect and resync."""
        if self.failed:
            return
        log.error("letter %s: append failed (%r); closing its connections", self.letter_id, exc)
        self._drop("log_unavailable", LOG_FAILED_REASON, unlogged)

    def _drop(self, refusal: str, reason: str, unlogged: Sequence[Entry] = ()) -> None:
        self.failed = True
        self.ctx.metrics.refuse(refusal)
        # Their sessions end here: the session.left entries go with what the room accepted but
        # did not log (rescued, gateway/live/rescue.py), else presence, the projector's
        # connections and the snapshotter's session-end version would wait for them forever.
        left = [self._session_entry(conn, self._left(conn, reason)) for conn in self.conns]
        for conn in list(self.conns):
            conn.close(LOG_UNAVAILABLE, reason)
        self.conns.clear()  # so that their leave() logs nothing more
        self._throttle.cancel_all()
        self.presence.stop()
        self.held.clear()
        self._on_gone(self, [*unlogged, *left])

    def stop_loading(self) -> None:
        """Shutdown: whoever waits for the load is refused now (`ready`), not at the end."""
        self._loading.cancel()

    async def close(self) -> None:
        """Flush what is queued and stop (idle unload, shutdown)."""
        self._throttle.cancel_all()
        self.presence.stop()
        self.held.clear()
        self._loading.cancel()
        await asyncio.gather(self._loading, return_exceptions=True)
        await self.owners.close()
        await self.letters.close()
        await self.presence_log.close()

    # -- connections ---------------------------------------------------------------------------

    def add(self, conn: Peer) -> None:
        self.conns.add(conn)
        if not conn.hocuspocus_sync:
            # y-websocket's server opens with its own step 1 so the client sends what we lack.
            conn.send(outgoing.sync_step1(self.doc.get_state()), "sync_step1")
        states = self.presence.encode()
        if states is not None:
            conn.send(outgoing.awareness(states), "awareness")
        user = UserRef(**stamp(conn.claims))
        payload = SessionJoined(conn_id=conn.id, user=user, role=conn.claims.role)
        self._log_session(conn, payload)

    def leave(self, conn: Peer, reason: str) -> None:
        if conn not in self.conns:
            return
        self.conns.discard(conn)
        self._throttle.forget(conn.id)
        removal = self.presence.remove(conn.id)
        if removal is not None:
            self._broadcast(outgoing.awareness(removal), "awareness")
            if not self.failed:
                self.presence_log.put(self._entry(conn, removal, "awareness.update"))
        self._log_session(conn, self._left(conn, reason))

    def _left(self, conn: Peer, reason: str) -> SessionLeft:
        return SessionLeft(
            conn_id=conn.id,
            user=UserRef(**stamp(conn.claims)),
            role=conn.claims.role,
            reason=reason[:200],
            duration_ms=int((time.monotonic() - conn.joined_at) * 1000),
        )

    def _log_session(self, conn: Peer, payload: SessionJoined | SessionLeft) -> None:
        if self.failed:
            return
        self.letters.put(self._session_entry(conn, payload))
        kind = "session.joined" if isinstance(payload, SessionJoined) else "session.left"
        self._notify({"type": kind, **payload.model_dump(mode="json")})

    def _session_entry(self, conn: Peer, payload: SessionJoined | SessionLeft) -> Entry:
        claims = conn.claims
        return self.ctx.entry(
            self.letter_id, payload, firm=claims.firm_id, user=claims.sub, conn=conn.id
        )

    # -- inbound -------------------------------------------------------------------------------

    def receive(self, conn: Peer, msg: Inbound, clients: list[int] | None = None) -> None:
        """`clients`: new_clients(msg.info, self.shape) when the caller just computed it."""
        if msg.kind == "sync_step1":
            conn.send(outgoing.sync_step2(self.state_for(msg.body)), "sync_step2")
            if conn.hocuspocus_sync:  # the provider answers with what we lack
                conn.send(outgoing.sync_step1(self.doc.get_state()), "sync_step1")
        elif msg.kind in ("sync_step2", "sync_update"):
            self._receive_update(conn, msg, clients)
        elif msg.kind == "awareness":
            self._receive_awareness(conn, msg)
        elif msg.kind == "query_awareness":
            states = self.presence.encode()
            if states is not None:
                conn.send(outgoing.awareness(states), "awareness")
        # auth and app messages from clients carry nothing we act on yet.

    def _receive_update(self, conn: Peer, msg: Inbound, clients: list[int] | None) -> None:
        assert msg.info is not None
        if msg.info.is_empty:
            return  # `00 00`: nothing to log or relay
        if not conn.claims.can_edit:
            if msg.info.blocks:  # a read-only step 2 often repeats known deletions: ignore those
                self.ctx.metrics.refuse("read_only")
                conn.send(
                    outgoing.permission_denied(f"role {conn.claims.role} is read-only"), "auth"
                )
            return
        echo = msg.kind == "sync_update" or conn.hocuspocus_sync
        part = self.new_part(msg.body, msg.info)
        if part is None:
            if echo:  # nothing new: the letter had it all already
                conn.acknowledge(msg.body)
            return
        # Trimmed, it writes under the same new ids: only structs at clocks the letter has go
        # (`lacking` cuts at the document's state vector, never past the shape's known clocks),
        # and a block that stays keeps its end, which alone puts its id in `new_clients`.
        update, info = part
        try:
            self.accept_update(conn, update, info, echo, clients, msg.body)
        except Refused as refusal:
            if refusal.reason != "client_id_not_owned" or msg.kind != "sync_step2":
                raise
            # A resync repeating another user's edits that a gateway relayed and died before
            # logging (gateway/live/resyncs.py): taken with their author's own resync, else
            # refused until it comes, with a code stock providers reconnect after (y-websocket
            # takes any 44xx as final).
            if not self._resync_together(conn, update, info):
                raise Refused(TRY_AGAIN_LATER, refusal.reason) from None

    def new_part(self, received: bytes, info: UpdateInfo) -> tuple[bytes, UpdateInfo] | None:
        """What the letter lacks of `received` (checked against it as `info`), checked; None if
        nothing. The one trim of WebSocket and REST updates alike (gateway/live/writes.py).

        Its deletions the letter has made, and when stripped the ones of clocks it lacks, are
        left out by the pre-parser (`info.update`). If it carries structs the letter has: a step
        2 is computed against our step 1, sent as it joined: what the letter took since (a
        peer's resync bringing what a dead gateway relayed and never logged) is in it still,
        under other users' ids too; a client or a backend may also send again what it has sent
        (or loaded). Only what the letter lacks is logged under this user: a record never
        repeats one (the audit, the log's size, the letter's size budget)."""
        update = received if info.update is None else info.update
        if not _repeats(info, self.shape):
            return update, info
        trimmed = still_adds(self.doc, update, self.shape.has_deleted) if info.blocks else None
        if trimmed is None:
            return None
        return trimmed, preparse.check_update(trimmed, self.ctx.limits, self.shape)

    def accept_update(
        self,
        conn: Peer,
        update: bytes,
        info: UpdateInfo,
        echo: bool,
        clients: list[int] | None = None,
        received: bytes | None = None,
    ) -> None:
        """`received`: what the sender sent, when `update` is the part of it that is new (a
        Hocuspocus provider's acknowledgement names the message it acknowledges)."""
        if self.size + len(update) > self.ctx.settings.max_document_bytes:
            raise Refused(TOO_LARGE, "document_too_large")
        if clients is None:
            clients = new_clients(info, self.shape)
        self.owners.check(conn.claims.sub, conn.client_ids, clients)
        try:
            self.doc.apply_update(update)
        except Exception:  # pycrdt refuses it: the client's, not ours
            raise Refused(MALFORMED, "update_rejected") from None
        self.shape.commit(info)
        self.size += len(update)
        started = time.perf_counter()
        frame = binary_frame(outgoing.update(update))  # the same bytes for every peer
        if conn.author:  # a REST writer (its records are named too): named before its update
            self._notify_writer(stamp(conn.claims), info)
        # Peers hear it now, as it is queued; the sender once it is durable (the acknowledgement).
        # Should the append fail, the rescue logs it before anyone can resync it
        # (gateway/live/rescue.py).
        entry = self._entry(conn, update, "doc.update")
        self.letters.put(
            entry, (lambda: conn.acknowledge(received or update, frame)) if echo else None
        )
        for peer in self.conns:
            if peer is not conn:
                peer.send_update(update, frame)
        self.ctx.metrics.fanout_latency.observe(time.perf_counter() - started)

    def _resync_together(self, conn: Peer, update: bytes, info: UpdateInfo) -> bool:
        """Take `update`'s own part with the parts other users' refused resyncs left held, else
        alone, if it then applies (nothing missing); else hold it. True if the letter now has
        all the update carries: the connection goes on."""
        user = conn.claims.sub
        fresh = new_clients(info, self.shape)
        foreign = self.owners.foreign(user, fresh)
        held = self.held.others(user)
        mine = len(foreign) < len(fresh) or bool(info.deletes)  # from the pre-parser: no copy
        if not mine and not held:
            return False  # nothing of its own to take, no held part it could complete
        if not self.held.may_try(self.size):  # own_part copies the letter, on the event loop
            raise Refused(TRY_AGAIN_LATER, "resync_rate_limited")
        own: Own | None = None
        if mine:
            try:
                part = own_part(self.doc, update, foreign)
                if part is not None:
                    own = part, preparse.check_update(part, self.ctx.limits, None)
            except Exception:  # refused by pycrdt (not expected: it passed the pre-parser), or
                return False  # too large a part to check
        # A held part that refers to what no part has cannot apply with any of them (a crafted
        # one never does): peeled off, one a try, so that it keeps the others out of no union.
        while held:
            outcome = self._take(conn, own, held)
            if not isinstance(outcome, Held):
                if outcome:
                    return not new_clients(info, self.shape)
                break
            held = [h for h in held if h is not outcome]
        if own is not None and self._take(conn, own, []) is True:
            return not new_clients(info, self.shape)
        if own is not None:
            self.held.hold(conn.claims, conn.id, own[0], own[1].blocks)
        return False

    def _take(self, conn: Peer, own: Own | None, held: list[Held]) -> bool | Held:
        """Apply `own` (conn's part, if any) and the `held` parts together if they apply; each
        is logged under its own user, as the letter still lacks it (nothing if it lacks nothing
        of it), and holds structs under that user's ids only. If not, the
        held part in the way, if one is: a struct of it refers to what no part has, or it has
        structs under an id its user no longer may write under; else False."""
        for h in held:
            if self.owners.foreign(h.claims.sub, [client for client, _, _ in h.blocks]):
                return h
        # Each held part as the letter still lacks it: its author's next resync may have
        # brought some or all of it since (gateway/live/resyncs.py).
        lacks: list[tuple[Held, bytes]] = []
        for h in held:
            part = still_adds(self.doc, h.update, self.shape.has_deleted)
            if part is None:
                self.held.taken([h])  # nothing left to bring
            else:
                lacks.append((h, part))
        held = [h for h, _ in lacks]
        parts = ([own[0]] if own is not None else []) + [part for _, part in lacks]
        if not parts:
            return False
        merged = merge_updates(*parts) if len(parts) > 1 else parts[0]
        try:
            together = preparse.check_update(merged, self.ctx.limits, self.shape)
        except ProtocolError as exc:  # something is still missing (or it is too large together)
            blamed = exc.struct
            if blamed is None or (own is not None and carries(own[1].blocks, blamed)):
                return False
            return next((h for h in held if carries(h.blocks, blamed)), False)
        if self.size + len(merged) > self.ctx.settings.max_document_bytes:
            return False
        if own is not None:
            self.owners.check(conn.claims.sub, conn.client_ids, new_clients(own[1], self.shape))
        try:
            self.doc.apply_update(merged)
        except Exception:  # pycrdt refused it: nothing taken (it passed the pre-parser)
            return False
        self.shape.commit(together)
        self.size += len(merged)
        self.held.taken(held)
        if own is not None:
            self.letters.put(self._entry(conn, own[0], "doc.update"), None)
        for h, part in lacks:
            self.owners.claim(h.claims.sub, [client for client, _, _ in h.blocks])
            user, firm = h.claims.sub, h.claims.firm_id
            entry = self.ctx.entry(
                self.letter_id, part, firm=firm, user=user, conn=h.conn_id, type="doc.update"
            )
            self.letters.put(entry, None)
        self.ctx.metrics.resync_parts.inc(len(parts))
        frame = binary_frame(outgoing.update(merged))
        for peer in self.conns:
            if peer is not conn:
                peer.send_update(merged, frame)
        return True

    def _receive_awareness(self, conn: Peer, msg: Inbound) -> None:
        update, kept = self.presence.accept(conn.id, conn.claims, msg.entries)
        if len(kept) < len(msg.entries):
            self.ctx.metrics.refuse("awareness_not_owned")
        if msg.entries and not kept:
            return
        self._broadcast(outgoing.awareness(update), "awareness")  # the sender too: keep-alive
        self._throttle.touch(conn.id, kept)

    def _flush_presence(self, owner: str, ids: list[int]) -> None:
        conn = next((c for c in self.conns if c.id == owner), None)
        states = self.presence.encode(ids)
        if conn is not None and states is not None and not self.failed:
            self.presence_log.put(self._entry(conn, states, "awareness.update"))

    def _presence_expired(self, removal: bytes) -> None:
        # Another instance stopped renewing these ids (it may be dead): gone for our peers too.
        # Not logged: every instance times them out on its own.
        self._broadcast(outgoing.awareness(removal), "awareness")

    def _presence_failed(self, exc: BaseException, _unlogged: Sequence[Entry] = ()) -> None:
        # Presence is ephemeral: a lost awareness record costs a caret update, not content.
        log.warning("letter %s: presence append failed: %r", self.letter_id, exc)
        self.ctx.metrics.refuse("presence_append_failed")
        batcher = self.ctx.batcher(Topic.PRESENCE)
        self.presence_log = batcher.appender(self.letter_id.encode(), self._presence_failed)

    # -- from other gateway instances ----------------------------------------------------------

    def apply_remote(self, event: Event) -> None:
        if self._pending is not None:
            self._pending.append(event)
            return
        if event.type == "doc.update" and isinstance(event.payload, bytes):
            info, whole = self.shape.absorb_whole(event.payload)
            self.doc.apply_update(event.payload)
            # One logged before what it builds on (a restored log, another writer: no gateway
            # accepts one) stays pending, and `get_update()` leaves it out: kept as the loaded
            # state's pending parts are, a peer joining before it settles gets it in its step 2
            # (its text else lacks it until it reconnects). pycrdt exposes no pending state, and
            # looking (`pending_parts`) costs up to ~1 ms in a letter of thousands of Yjs
            # clients: only where the shape cannot tell (it holds what is pending as if
            # integrated while something is).
            if self._unsettled or not whole:
                self._unsettled += pending_parts(self.doc, [event.payload])
            self.owners.learn(event.envelope.user, event.payload)
            self.size += len(event.payload)
            if event.envelope.name:  # written over REST through another instance
                self._notify_writer(user_stamp(event.envelope.user, event.envelope.name), info)
            frame = binary_frame(outgoing.update(event.payload))
            for peer in self.conns:
                peer.send_update(event.payload, frame)
        elif event.type == "awareness.update" and isinstance(event.payload, bytes):
            self.presence.apply_remote(event.payload)
            self._broadcast(outgoing.awareness(event.payload), "awareness")
        elif event.type in ("session.joined", "session.left") and not isinstance(
            event.payload, bytes
        ):
            self._notify({"type": event.type, **event.payload.model_dump(mode="json")})
        elif event.type.startswith(("comment.", "lock.")) and not isinstance(event.payload, bytes):
            # Issue 7: the same app message gateway/collab sends to local collaborators.
            self._notify(outgoing.app_body(event.type, event.payload, event.envelope.user))

    # -- helpers -------------------------------------------------------------------------------

    def state_for(self, vector: bytes) -> bytes:
        """What a peer at `vector` lacks, with what the document still holds pending."""
        return with_pending(self.doc.get_update(vector), self.unsettled())

    def unsettled(self) -> list[bytes]:
        """What of the loaded state and the remote updates the document still holds pending:
        looked at again when a peer asks and at a metrics scrape (`gateway_letters_pending`),
        not on every update."""
        if self._unsettled:
            self._unsettled = pending_parts(self.doc, self._unsettled)
            self.unsettled_seen = time.monotonic()
        return self._unsettled

    @property
    def holds_pending(self) -> bool:
        """As last looked (`unsettled`): parts of it may have settled since."""
        return bool(self._unsettled)

    def _broadcast(self, message: bytes, kind: str) -> None:
        frame = binary_frame(message)
        for peer in self.conns:
            peer.send(message, kind, frame)

    def _notify_writer(self, user: dict[str, str], info: UpdateInfo) -> None:
        """Who wrote under `info`'s client ids (a REST write), for the peers' edit highlights;
        `info`: the check the update had here already (re-read RR3: it was scanned twice)."""
        body = outgoing.writer_body(user, info.blocks)
        if body is not None:
            self._notify(body)

    def _notify(self, body: dict[str, object]) -> None:
        message = None
        for peer in self.conns:
            if peer.events:
                message = message or outgoing.app_message(body)
                peer.send(message, "app")

    def _entry(self, conn: Peer, value: bytes, type_: str) -> Entry:
        return self.ctx.entry(
            self.letter_id,
            value,
            firm=conn.claims.firm_id,
            user=conn.claims.sub,
            conn=conn.id,
            type=type_,
            name=conn.author,
        )


def _repeats(info: UpdateInfo, shape: DocShape) -> bool:
    """Whether the update carries structs at clocks the letter knows already; or, carrying
    none, nothing but deletions the letter has made (the pre-parser left them out of
    `info.deletes`). Every step 2 repeats the letter's delete set: logged again, each reconnect
    charged it to the letter's size until typing was refused 4413 (final for y-websocket). A
    range DocShape did not record (past its cap) counts as new."""
    if not info.blocks:
        return not info.deletes
    return any(first < shape.known_clock(client) for client, first, _ in info.blocks)
