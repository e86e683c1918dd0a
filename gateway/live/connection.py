"""One WebSocket joined to one letter: limits, the read loop, and an outbox with its writer.

Every frame goes through `inbound.decode` then the room inside one guard: any exception,
pycrdt's Rust panics included (pyo3's PanicException is a BaseException), closes this
connection only; cancellation, KeyboardInterrupt and SystemExit propagate. A message waits on
the way in only for the first-use claim of a Yjs client id (gateway/live/ownership.py) or, over
the frame rate, for the rate (a client is read at its rate, and refused only after a long run).

Inbound, under uvicorn, messages are handled as the socket's data is parsed (gateway/transport.py,
`READ_DIRECT`), not through ASGI's queue and this connection's task. A message that must wait
continues in a task; messages after it wait in `_inbox`, with reading paused, so the order is
kept. Without the extension (any other ASGI server) the read loop does the same.
A connection that sends while too much waits for the log stops reading until it caught up
(gateway/live/intake.py).

Outbound, a message with nothing waiting before it is held until the end of the event-loop
tick and written straight to the socket with the tick's other frames for this client
(gateway/transport.py, `EndOfTick`); if the socket declines, or a backlog exists, it goes into
the outbox, which a writer task sends through ASGI, merging a backlog of updates. An outbox
above `max_outbox_bytes` is a client that does not read: it is dropped (slow consumer).
"""

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any, Protocol

from pycrdt import merge_updates

from gateway import inbound, outgoing
from gateway.auth import Claims
from gateway.context import Context
from gateway.errors import (
    MALFORMED,
    SLOW_CONSUMER,
    TRY_AGAIN_LATER,
    Refused,
)
from gateway.inbound import Inbound
from gateway.live.buckets import TokenBucket, user_key
from gateway.live.pacing import FrameRate, Paced, waiting_task
from gateway.live.room import Room
from gateway.live.session import Session
from gateway.live.writes import admit_update, charge_bytes, charged
from gateway.transport import ABORT, CLOSE_RECEIVED, READ_DIRECT, WRITE_FRAME, binary_frame
from schemas.events import CLIENT_CLOSED_REASON, CONNECTION_LOST_REASON
from schemas.ids import uuid7

log = logging.getLogger(__name__)
MAX_OUTBOX = 20_000  # frames queued for one client before we call it too slow
MERGE_MAX = 256  # updates merged into one outgoing message when a client falls behind
UPDATE = "update"
# Awareness above this rate is not relayed; only the latest held message goes out once the
# bucket refills (a caret must not stay stale), everything in between is dropped.
AWARENESS_PER_S, AWARENESS_BURST = 10.0, 10
TRANSPORT_REFUSALS = (1002, 1007, 1009)
# Requests answered with the letter's state: the whole document for an empty state vector, every
# present user's awareness (schemas/settings.py, state_requests_*).
STATE_REQUESTS = ("sync_step1", "query_awareness")
SYNC_STEP2, SYNC_UPDATE = b"\x00\x01", b"\x00\x02"  # y-protocols' sync message subtypes
# A client sending updates past holes gets our step 1 at most this often (`_ask_for_hole`).
GAP_STEP1_S = 1.0
Admitted = tuple[int, int]  # what `admit_update` charged: (update bytes, item splits' cost)


class Socket(Protocol):
    """What a Connection uses of Starlette's WebSocket (gateway/live/addressed.py has another)."""

    @property
    def scope(self) -> Any: ...
    async def receive(self) -> Any: ...
    async def send_bytes(self, data: bytes) -> None: ...
    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...


class Connection:
    hocuspocus_sync = False  # y-websocket's handshake (gateway/live/room.py, Peer)
    author = ""  # its records' user is named by its session.joined (Peer)

    def __init__(
        self,
        ctx: Context,
        ws: Socket,
        claims: Claims,
        events: bool,
        update_budget: TokenBucket,  # the user's, shared by their connections here
    ) -> None:
        self.ctx, self.ws, self.events = ctx, ws, events
        client = ws.scope.get("client")  # ASGI's (host, port), if the server knows it
        # Its token: expiry and renewal (a refused renewal is logged with the client's host).
        self.session = Session(ctx, claims, self.close, client[0] if client else None)
        self.id = uuid7()
        self.joined_at = time.monotonic()
        self.closing: tuple[int, str] | None = None
        self._outbox: deque[tuple[str, bytes]] = deque()
        self._wake = asyncio.Event()
        s = ctx.settings
        self._rate = FrameRate(
            s.rate_messages_per_s, s.rate_burst, s.rate_wait_max_s, ctx.metrics.paced.inc
        )
        # Awareness and requests for state over their budgets wait for it (gateway/live/pacing.py).
        refuse = ctx.metrics.refuse
        self._room: Room | None = None  # while serving
        self._awareness = Paced(
            TokenBucket(AWARENESS_PER_S, AWARENESS_BURST),
            "awareness_rate_limited",
            self._deliver_waiting,
            refuse,
        )
        self._state_requests = Paced(
            TokenBucket(s.state_requests_per_s, s.state_requests_burst),
            "state_request_rate_limited",
            self._deliver_waiting,
            refuse,
        )
        self.update_budget = update_budget
        self.client_ids: set[int] = set()  # Yjs client ids this connection has written under
        self._writing = False
        self._extensions = ws.scope.get("extensions") or {}
        self._write_frame = self._extensions.get(WRITE_FRAME)  # gateway/transport.py, uvicorn
        self._abort = self._extensions.get(ABORT)
        self._lost = False  # gone without a close frame (CLOSE_RECEIVED)
        # Direct reads (READ_DIRECT): messages that arrive while one waits, in order.
        self._inbox: deque[bytes | None] = deque()
        self._waiting: asyncio.Task[None] | None = None
        self._pause_reading: Callable[[bool], None] = lambda paused: None
        # Reading stops while a message waits (the inbox) or while the log is behind (the intake;
        # the ASGI read loop waits on the event). One bound method: the intake keeps it in a set.
        self._held_for_wait = False
        self._log_hold = self._hold_for_log
        self._log_caught_up = asyncio.Event()
        self._log_caught_up.set()
        self._outbox_bytes = 0
        # Frames for the socket at the end of this tick: (kind, message, its frame).
        self._tick: list[tuple[str, bytes, bytes]] = []
        # The client's sync step 2 has answered our latest step 1 (gateway/live/room.py).
        self._synced = False
        # A step 2 came (charged for what is new only: the first one, `_handle`).
        self._step2_seen = False
        self._gap_step1_at = -GAP_STEP1_S  # our last step 1 asking for a hole (`_ask_for_hole`)
        self._writer = asyncio.create_task(self._write_loop(), name=f"send:{self.id}")

    @property
    def claims(self) -> Claims:
        return self.session.claims

    # -- outbound ------------------------------------------------------------------------------

    def send(self, data: bytes, kind: str, frame: bytes | None = None) -> None:
        """Send one protocol message (a whole frame); `frame`: it framed already (broadcasts
        frame once for all peers)."""
        self._queue(kind, data, frame)

    def send_update(self, update: bytes, frame: bytes | None = None) -> None:
        """Send a Yjs update (`frame`: its update message, framed); a backlog of updates goes
        out merged, as one message."""
        self._queue(UPDATE, update, frame)

    def acknowledge(self, update: bytes, frame: bytes | None = None) -> None:
        """The sender's own update is in the log: y-websocket hears it echoed (DESIGN.md)."""
        self._queue(UPDATE, update, frame)

    def _queue(self, kind: str, data: bytes, frame: bytes | None) -> None:
        if self.closing is not None:
            return
        if self._write_frame is not None and not self._outbox and not self._writing:
            # Nothing ahead of it: to the socket at the end of this tick, in one write with the
            # tick's other frames for this client (gateway/transport.py).
            if frame is None:
                frame = binary_frame(outgoing.update(data) if kind == UPDATE else data)
            if not self._tick:
                self.ctx.end_of_tick.add(self)
            self._tick.append((kind, data, frame))
            self.ctx.metrics.sent(kind)
            return
        if self._over_bound(1, len(data)):
            self._slow_consumer()
            return
        self._outbox.append((kind, data))
        self._outbox_bytes += len(data)
        self._wake.set()
        self.ctx.metrics.sent(kind)

    def flush_tick(self) -> None:
        """Write this tick's frames at once; if the socket declines (paused, closing), they go
        through the outbox instead, ahead of anything queued after them, within its bounds."""
        items, self._tick = self._tick, []
        if not items or self._write_frame is None:
            return
        data = items[0][2] if len(items) == 1 else b"".join([frame for _, _, frame in items])
        if self._write_frame(data):
            return
        for kind, data, _ in reversed(items):
            self._outbox.appendleft((kind, data))
            self._outbox_bytes += len(data)
        if self._over_bound():
            self._slow_consumer()
            return
        self._wake.set()

    def _over_bound(self, frames: int = 0, size: int = 0) -> bool:
        """The outbox, with `frames` more of `size` bytes, is over its bounds."""
        return (
            len(self._outbox) + frames > MAX_OUTBOX
            or self._outbox_bytes + size > self.ctx.settings.max_outbox_bytes
        )

    def _slow_consumer(self) -> None:
        """It does not read what we send: drop the backlog and the connection. Sending the
        backlog first (close()) would wait on a socket that is not being read."""
        self.ctx.metrics.refuse("slow_consumer")
        self._outbox.clear()
        self._tick.clear()
        self._outbox_bytes = 0
        self.close(SLOW_CONSUMER, "too slow")
        if self._abort is not None:
            self._abort()

    def _pop(self) -> tuple[str, bytes]:
        kind, data = self._outbox.popleft()
        self._outbox_bytes -= len(data)
        return kind, data

    def _next_frame(self) -> bytes:
        kind, data = self._pop()
        if kind != UPDATE:
            return data
        batch = [data]
        while self._outbox and self._outbox[0][0] == UPDATE and len(batch) < MERGE_MAX:
            batch.append(self._pop()[1])
        # One protocol message per frame (DESIGN.md): a backlog is merged, never concatenated.
        return outgoing.update(merge_updates(*batch) if len(batch) > 1 else data)

    def close(self, code: int, reason: str) -> None:
        """Send what is queued, then the close frame."""
        if self.closing is None:
            self.closing = (code, reason)
            self.session.end()
            self._wake.set()

    async def _write_loop(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._outbox:
                    self._writing = True  # a frame in flight: later ones must queue behind it
                    await self.ws.send_bytes(self._next_frame())
                    self._writing = False
                if self.closing is not None:
                    code, reason = self.closing
                    await self.ws.close(code, reason)
                    return
        except Exception as exc:  # the client went away while we wrote: the reader ends too
            log.debug("connection %s: send failed: %r", self.id, exc)
            self.closing = self.closing or (1006, CONNECTION_LOST_REASON)  # its socket gone

    # -- inbound -------------------------------------------------------------------------------

    async def serve(self, room: Room) -> str:
        """Read frames until the socket closes; the reason for the session.left event."""
        self._room = room
        self.session.start()
        try:
            await self._read_loop(room)
        finally:
            self.session.end()
            self._awareness.stop()
            self._state_requests.stop()
            self._room = None
            if self._waiting is not None:
                self._waiting.cancel()
            self._inbox.clear()
            client_left = self.closing is None
            if client_left:  # nothing more goes out (late echoes included)
                lost = (1006, CONNECTION_LOST_REASON)
                self.closing = lost if self._lost else (1000, CLIENT_CLOSED_REASON)
            await self._stop_writer(cancel=client_left)
        return self.closing[1] if self.closing else CLIENT_CLOSED_REASON

    async def renew_with(self, token: str) -> str | None:
        """A later token sent in-band (`Peer`'s, for the app channel): gateway/live/session.py."""
        return await self.session.renew_with(token)

    async def _read_loop(self, room: Room) -> None:
        read_direct = self._extensions.get(READ_DIRECT)
        if read_direct is not None:  # under uvicorn: messages come to _on_message
            self._pause_reading = read_direct(lambda data: self._on_message(room, data))
        try:
            await self._receive_loop(room, direct=read_direct is not None)
        finally:
            self.ctx.intake.leave(self._log_hold)

    def _hold_for_log(self, paused: bool) -> None:
        """The intake's: the log is behind (True) or has caught up (False)."""
        if paused:
            self._log_caught_up.clear()
        else:
            self._log_caught_up.set()
        self._pause_reading(self._held_for_wait or paused)

    def _hold_for_wait(self, paused: bool) -> None:
        self._held_for_wait = paused
        self._pause_reading(paused or not self._log_caught_up.is_set())

    async def _receive_loop(self, room: Room, direct: bool) -> None:
        while True:  # ASGI: the disconnect, and every message without READ_DIRECT
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                self._count_transport_refusal(message.get("code"))
                received = self._extensions.get(CLOSE_RECEIVED)
                ours = message.get("code") in TRANSPORT_REFUSALS  # uvicorn closed it (1009, 1002)
                self._lost = received is not None and not received() and not ours
                return
            if not direct:  # held until the log caught up; uvicorn queues one more, then pauses
                await self._log_caught_up.wait()
            if self.closing is not None:
                continue  # we are closing: wait for the client's close frame
            await self._guarded(room, message.get("bytes"))

    def _count_transport_refusal(self, code: object) -> None:
        # The WebSocket layer closed the socket itself: 1009 for a frame above ws_max_size,
        # 1002 for a protocol violation (e.g. a compressed frame when deflate is off).
        if code in TRANSPORT_REFUSALS:
            self.ctx.metrics.refuse(f"transport_{code}")

    async def _guarded(self, room: Room, data: bytes | None) -> None:
        try:
            wait = self._frame(room, data)
            if wait is not None:
                await wait
        except BaseException as exc:
            self._refuse(exc)

    def _on_message(self, room: Room, data: bytes | None) -> None:
        """A message straight from the socket (gateway/transport.py, READ_DIRECT)."""
        if self.closing is not None:
            return
        if self._waiting is not None:  # an earlier message waits (a claim, the rate): in order
            self._inbox.append(data)
            self._hold_for_wait(True)  # the inbox holds at most what one read brought
            return
        self._run(room, data)

    def _run(self, room: Room, data: bytes | None) -> None:
        try:
            wait = self._frame(room, data)
        except BaseException as exc:
            self._refuse(exc)
            return
        if wait is not None:
            self._waiting = waiting_task(self._after_wait(room, wait), wait)

    async def _after_wait(self, room: Room, wait: Coroutine[Any, Any, None]) -> None:
        try:
            await wait
        except BaseException as exc:
            self._refuse(exc)
        self._waiting = None
        while self._inbox and self._waiting is None:
            data = self._inbox.popleft()
            if self.closing is None:
                self._run(room, data)
        if self._waiting is None:
            self._hold_for_wait(False)

    def _refuse(self, exc: BaseException) -> None:
        """A frame failed: this connection is closed, nothing else is touched. Cancellation,
        KeyboardInterrupt and SystemExit propagate; pycrdt panics derive from BaseException."""
        if isinstance(exc, Refused):
            self.ctx.metrics.refuse(exc.reason)
            self.close(exc.code, exc.reason)
        elif isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt, SystemExit)):
            raise exc
        else:
            log.warning("connection %s: frame refused: %r", self.id, exc)
            self.ctx.metrics.refuse("frame_error")
            self.close(MALFORMED, "malformed frame")

    def _frame(self, room: Room, data: bytes | None) -> Coroutine[Any, Any, None] | None:
        """Handle one message now; or return what handles it after a wait: for the frame rate,
        or for a claim of client ids this instance has not seen (a Redis round trip)."""
        if self.ctx.intake.full:  # this one is handled; nothing more is read for now
            self.ctx.intake.hold(self._log_hold)
        if data is None:
            raise Refused(MALFORMED, "text_frame")
        if not self._rate.take():
            return self._over_rate(room, data, self._rate.wait_s())  # 4429 after a long run
        return self._handle(room, data)

    async def _over_rate(self, room: Room, data: bytes, wait_s: float) -> None:
        """Over the frame rate: this message waits its turn, and the messages after it wait in
        the socket, so the client is read at the rate (gateway/live/pacing.py)."""
        await asyncio.sleep(wait_s)
        if self.closing is not None:  # the room failed, or the token expired, meanwhile
            return
        claim = self._handle(room, data)
        if claim is not None:
            await claim

    def _handle(self, room: Room, data: bytes) -> Coroutine[Any, Any, None] | None:
        """A message within the frame rate: now, or after a claim (as `_frame`)."""
        # Read-only updates are refused without being applied: their bodies are not read
        # (`inbound.unread`), else a viewer's 250,000 delete ranges cost the loop ~1 s unpaid.
        can_edit = self.claims.can_edit
        shape = room.shape if can_edit else None
        try:
            msg = inbound.decode(data, self.ctx.limits, shape, read_only=not can_edit)
        except Refused as refusal:
            if not self._before_sync(refusal, data):
                raise
            return None
        # The step 2 answering the greeting's step 1 repeats the letter's delete set (every
        # reconnect's): only what the letter lacks of it is charged. Any other message is charged
        # as sent, a later step 2 too (a hole's step 1 can be provoked once a second): checking
        # repeated deletions costs the loop as much as new ones.
        answers = msg.kind == "sync_step2" and not self._step2_seen
        if msg.kind == "sync_step2":
            self._synced = self._step2_seen = True
        self.ctx.metrics.received(msg.kind)
        if msg.kind in STATE_REQUESTS and not self._state_requests.take():
            self._state_requests.wait(msg)  # answered once the budget allows
            return None
        if msg.kind == "app":  # comment/lock commands of opted-in clients (issue 7)
            if self.events and self.ctx.app_messages is not None:
                self.ctx.app_messages(self, room, msg.body)
            return None
        if msg.kind == "awareness":
            # Echoes change nothing: dropped before the rate limit, so that they neither use up
            # the sender's own awareness budget nor count as refusals (gateway/live/presence.py).
            fresh = room.presence.changes(msg.entries)
            if len(fresh) < len(msg.entries):
                self.ctx.metrics.awareness_echoes.inc(len(msg.entries) - len(fresh))
                if not fresh:
                    return None
                msg = replace(msg, entries=fresh)
            if not self._awareness.take():
                self._awareness.wait(msg)  # relayed once the rate allows
                return None
        clients = None
        if msg.info is not None and not can_edit and not answers:
            # Unread, but received: a viewer's 1 MB frames at the frame rate cost the loop their
            # bytes (unmasked, copied; 8 a second of 800 KB: echoes elsewhere up to 1.2 s). Not
            # the answer to our greeting: each reconnect's repeats the letter's whole delete set
            # (a viewer of a long-edited letter was closed 4429 after a few reconnects), and the
            # handshake budget bounds how often there is one.
            charge_bytes(self.update_budget, len(msg.body))
        if msg.info is not None and can_edit:
            budget, used = self.update_budget, self.client_ids
            spans = room.shape.deleted_spans
            size = charged(msg.info, len(msg.body), spans) if answers else len(msg.body)
            clients, unknown = admit_update(room, self.claims, budget, used, msg.info, size)
            admitted = size, msg.info.split_cost
            if unknown:
                return self._claim(room, data, unknown, admitted)
            self._deliver_admitted(room, msg, clients, admitted)
            return None
        self._deliver(room, msg, clients)
        return None

    def _before_sync(self, refusal: Refused, data: bytes) -> bool:
        """An update that builds on edits we do not have, before the client's sync step 2: typed
        while the connection came back (the client sends its edits at once, its step 2 only in
        answer to our step 1). That step 2 will carry it, with what it builds on: dropped, not
        refused (y-websocket 3.1 never comes back after a 4400). An update or step 2 past a hole
        in its client's clocks (`clock_gap`) is dropped too, at any time (the log never gets a
        hole: docs/contracts.md), and answered with our step 1 if none is awaiting its step 2.
        Either is charged as sent to the update-bytes budget first (checking it cost the loop as
        much as taking it: OverBudget over it, as `admit_update`)."""
        if refusal.reason == "clock_gap":
            charge_bytes(self.update_budget, len(data))
            self.ctx.metrics.refuse("clock_gap")
            if data[:2] == SYNC_STEP2:
                self._synced = self._step2_seen = True  # it answered our step 1 as far as it can
            self._ask_for_hole()
            return True
        if self._synced or refusal.reason != "missing_dependency" or data[:2] != SYNC_UPDATE:
            return False
        charge_bytes(self.update_budget, len(data))
        self.ctx.metrics.refuse("update_before_sync")
        return True

    def _ask_for_hole(self) -> None:
        """Our step 1, so that a stock client answers with a step 2 of all we lack of it, the
        hole included. Bounded: none while one awaits its step 2 (that step 2 will carry what
        is dropped meanwhile), and at most one per GAP_STEP1_S."""
        now = time.monotonic()
        if not self._synced or self._room is None or now - self._gap_step1_at < GAP_STEP1_S:
            return
        self._synced, self._gap_step1_at = False, now
        self.send(outgoing.sync_step1(self._room.doc.get_state()), "sync_step1")

    def _deliver(self, room: Room, msg: Inbound, clients: list[int] | None = None) -> None:
        room.receive(self, msg, clients)

    def _deliver_admitted(
        self, room: Room, msg: Inbound, clients: list[int] | None, admitted: Admitted
    ) -> None:
        """An update `admit_update` charged `admitted` for: given back if the room refuses it
        before taking it (another user's client id, the document's cap, pycrdt), as a REST
        write's is. Not after a resync's refusal (TRY_AGAIN_LATER: Room._resync_together may
        have taken or held a part of it, and copied the letter to check it): charged as sent."""
        try:
            self._deliver(room, msg, clients)
        except Refused as refusal:
            if refusal.code != TRY_AGAIN_LATER:
                self._refund(admitted)
            raise

    def _refund(self, admitted: Admitted) -> None:
        size, split_cost = admitted
        self.update_budget.refund(size)
        if split_cost:
            self.ctx.split_cost.refund(user_key(self.claims), split_cost)

    async def _claim(self, room: Room, data: bytes, unknown: list[int], admitted: Admitted) -> None:
        """Ask Redis who owns the client ids this update uses first (gateway/live/ownership.py),
        then check the update again: the letter may have changed while we waited. Refused (or
        dropped: the room failed, the connection closed) before the room took it, the charge
        of `admit_update` is given back."""
        try:
            await room.owners.resolve(unknown, self.claims.sub)
            if self.closing is not None:  # the room failed while we waited
                self._refund(admitted)
                return
            msg = inbound.decode(data, self.ctx.limits, room.shape)
        except BaseException:
            self._refund(admitted)
            raise
        self._deliver_admitted(room, msg, None, admitted)

    def _deliver_waiting(self, msg: Inbound) -> None:
        """A message that waited for its budget (gateway/live/pacing.py)."""
        if self.closing is None and self._room is not None:
            self._deliver(self._room, msg)

    async def finish(self) -> None:
        """Wait for the outbox and the close frame to go out (no reading)."""
        await self._stop_writer(cancel=False)

    async def _stop_writer(self, cancel: bool) -> None:
        if cancel:
            self._writer.cancel()
        try:
            async with asyncio.timeout(5):
                await asyncio.gather(self._writer, return_exceptions=True)
        except TimeoutError:
            self._writer.cancel()
