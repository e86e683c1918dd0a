"""One WebSocket joined to one letter: limits, the read loop, and an outbox with its writer.

Every frame goes through `inbound.decode` then the room inside one guard: any exception,
pycrdt's Rust panics included (pyo3's PanicException is a BaseException), closes this
connection only; cancellation, KeyboardInterrupt and SystemExit propagate. The one await between
decoding and the room is the first-use claim of a Yjs client id (gateway/live/ownership.py).

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

from pycrdt import merge_updates
from starlette.websockets import WebSocket

from gateway import inbound, outgoing
from gateway.auth import Claims
from gateway.context import Context
from gateway.errors import MALFORMED, RATE_LIMITED, SLOW_CONSUMER, TOKEN_EXPIRED, Refused
from gateway.inbound import Inbound
from gateway.live.ownership import check_count, new_clients
from gateway.live.room import Room
from gateway.transport import ABORT, WRITE_FRAME, binary_frame
from schemas.ids import uuid7

log = logging.getLogger(__name__)
MAX_OUTBOX = 20_000  # frames queued for one client before we call it too slow
MERGE_MAX = 256  # updates merged into one outgoing message when a client falls behind
UPDATE = "update"
# Awareness above this rate is not relayed; only the latest held message goes out once the
# bucket refills (a caret must not stay stale), everything in between is dropped.
AWARENESS_PER_S, AWARENESS_BURST = 10.0, 10
TRANSPORT_REFUSALS = (1002, 1007, 1009)


class TokenBucket:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, float(burst)
        self.tokens, self.at = float(burst), time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


class Connection:
    def __init__(self, ctx: Context, ws: WebSocket, claims: Claims, events: bool) -> None:
        self.ctx, self.ws, self.claims, self.events = ctx, ws, claims, events
        self.id = uuid7()
        self.joined_at = time.monotonic()
        self.closing: tuple[int, str] | None = None
        self._outbox: deque[tuple[str, bytes]] = deque()
        self._wake = asyncio.Event()
        self._bucket = TokenBucket(ctx.settings.rate_messages_per_s, ctx.settings.rate_burst)
        self._awareness_bucket = TokenBucket(AWARENESS_PER_S, AWARENESS_BURST)
        self.client_ids: set[int] = set()  # Yjs client ids this connection has written under
        self._held: Inbound | None = None  # the latest awareness message over the rate
        self._held_timer: asyncio.TimerHandle | None = None
        self._writing = False
        extensions = ws.scope.get("extensions") or {}
        self._write_frame = extensions.get(WRITE_FRAME)  # gateway/transport.py, under uvicorn
        self._abort = extensions.get(ABORT)
        self._outbox_bytes = 0
        # Frames for the socket at the end of this tick: (kind, message, its frame).
        self._tick: list[tuple[str, bytes, bytes]] = []
        self._writer = asyncio.create_task(self._write_loop(), name=f"send:{self.id}")

    # -- outbound ------------------------------------------------------------------------------

    def send(self, data: bytes, kind: str, frame: bytes | None = None) -> None:
        """Send one protocol message (a whole frame); `frame`: it framed already (broadcasts
        frame once for all peers)."""
        self._queue(kind, data, frame)

    def send_update(self, update: bytes, frame: bytes | None = None) -> None:
        """Send a Yjs update (`frame`: its update message, framed); a backlog of updates goes
        out merged, as one message."""
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
        if (
            len(self._outbox) >= MAX_OUTBOX
            or self._outbox_bytes + len(data) > self.ctx.settings.max_outbox_bytes
        ):
            self._slow_consumer()
            return
        self._outbox.append((kind, data))
        self._outbox_bytes += len(data)
        self._wake.set()
        self.ctx.metrics.sent(kind)

    def flush_tick(self) -> None:
        """Write this tick's frames at once; if the socket declines (paused, closing), they go
        through the outbox instead, ahead of anything queued after them."""
        items, self._tick = self._tick, []
        if not items or self._write_frame is None:
            return
        data = items[0][2] if len(items) == 1 else b"".join([frame for _, _, frame in items])
        if self._write_frame(data):
            return
        for kind, data, _ in reversed(items):
            self._outbox.appendleft((kind, data))
            self._outbox_bytes += len(data)
        self._wake.set()

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
            self.closing = self.closing or (1006, "send failed")

    # -- inbound -------------------------------------------------------------------------------

    async def serve(self, room: Room) -> str:
        """Read frames until the socket closes; the reason for the session.left event."""
        loop = asyncio.get_running_loop()
        expiry = loop.call_later(max(0.0, self.claims.exp - time.time()), self._expire)
        try:
            await self._read_loop(room)
        finally:
            expiry.cancel()
            if self._held_timer is not None:
                self._held_timer.cancel()
            client_left = self.closing is None
            if client_left:  # nothing more goes out (late echoes included)
                self.closing = (1000, "client closed")
            await self._stop_writer(cancel=client_left)
        return self.closing[1] if self.closing else "client closed"

    def _expire(self) -> None:
        self.ctx.metrics.refuse("token_expired")
        self.close(TOKEN_EXPIRED, "token expired")

    async def _read_loop(self, room: Room) -> None:
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                self._count_transport_refusal(message.get("code"))
                return
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
            await self._frame(room, data)
        except Refused as refusal:
            self.ctx.metrics.refuse(refusal.reason)
            self.close(refusal.code, refusal.reason)
        except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # pycrdt panics derive from BaseException
            log.warning("connection %s: frame refused: %r", self.id, exc)
            self.ctx.metrics.refuse("frame_error")
            self.close(MALFORMED, "malformed frame")

    async def _frame(self, room: Room, data: bytes | None) -> None:
        if data is None:
            raise Refused(MALFORMED, "text_frame")
        if not self._bucket.take():
            raise Refused(RATE_LIMITED, "rate_limited")
        # Read-only updates are refused without being applied: no need to check them in depth.
        shape = room.shape if self.claims.can_edit else None
        msg = inbound.decode(data, self.ctx.limits, shape)
        self.ctx.metrics.received(msg.kind)
        if msg.kind == "app":  # comment/lock commands of opted-in clients (issue 7)
            if self.events and self.ctx.app_messages is not None:
                self.ctx.app_messages(self, room, msg.body)
            return
        if msg.kind == "awareness" and not self._awareness_bucket.take():
            self._hold(room, msg)
            return
        clients = None
        if msg.info is not None and self.claims.can_edit:
            msg, clients = await self._claim(room, data, msg)
            if self.closing is not None:  # the room failed while we waited
                return
        room.receive(self, msg, clients)

    def _hold(self, room: Room, msg: Inbound) -> None:
        if self._held is not None:
            self.ctx.metrics.refuse("awareness_rate_limited")  # the one it replaces is dropped
        self._held = msg
        if self._held_timer is None:
            loop = asyncio.get_running_loop()
            self._held_timer = loop.call_later(1 / AWARENESS_PER_S, self._release, room)

    def _release(self, room: Room) -> None:
        self._held_timer = None
        msg, self._held = self._held, None
        if msg is None or self.closing is not None:
            return
        if not self._awareness_bucket.take():
            self._hold(room, msg)
            return
        try:
            room.receive(self, msg)
        except Exception as exc:  # already validated; nothing here should fail
            log.warning("connection %s: held awareness refused: %r", self.id, exc)

    async def _claim(
        self, room: Room, data: bytes, msg: Inbound
    ) -> tuple[Inbound, list[int] | None]:
        """Ask Redis who owns the client ids this update uses first (gateway/live/ownership.py).
        Also the ids with new clocks, for the room, unless it must look again (None)."""
        assert msg.info is not None
        clients = new_clients(msg.info, room.shape)
        check_count(self.client_ids, clients)
        unknown = room.owners.unknown(clients)
        if not unknown:
            return msg, clients  # no await since: still what the room would find
        await room.owners.resolve(unknown, self.claims.sub)
        # The letter may have changed while we waited: check the update against it again.
        return inbound.decode(data, self.ctx.limits, room.shape), None

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
