"""One gateway instance: its context, access checks, rooms, tail, connections and drain."""

import asyncio
import logging
import os
import socket
from typing import Any, Protocol

from pycrdt import Doc
from starlette.websockets import WebSocket

from eventlog.errors import LogUnavailableError
from eventlog.records import Log
from gateway.access import Access, LetterMeta
from gateway.auth import Claims
from gateway.context import Context
from gateway.errors import GOING_AWAY, LOG_UNAVAILABLE, Refused
from gateway.inbound import limits_for
from gateway.live import loader, writes
from gateway.live.addressed import DocumentSocket
from gateway.live.attendance import Attendance
from gateway.live.buckets import user_key
from gateway.live.connection import Connection
from gateway.live.room import Room
from gateway.live.rooms import Rooms
from gateway.live.tail import Tail
from gateway.live.unheld import UnheldReads
from gateway.metrics import Metrics
from schemas.events import CLIENT_CLOSED_REASON, SHUTDOWN_REASON
from schemas.keys import ALIVE_EVERY_S, ALIVE_TTL_S, alive_key
from schemas.outages import Outage
from schemas.settings import Settings
from schemas.ystate import pending_parts, with_pending

log = logging.getLogger(__name__)
DRAIN_TIMEOUT_S = 10.0


class Socket(Protocol):
    """A socket that carries sessions without being one (a Hocuspocus socket, gateway/api/
    hocuspocus.py): open before any document authenticates, and after its documents end."""

    def shut(self, code: int, reason: str) -> None: ...


def new_gateway_id(settings: Settings) -> str:
    """This run's id: `STENO_GATEWAY_ID` (else host name and pid) and a suffix of its own. A run
    is the unit the projector's sweep reaps (`gateway:<id>:alive`): a gateway restarted under a
    fixed id (compose's `restart:`) would refresh its dead run's key, whose connections then
    stayed present for ever, with no session.left."""
    prefix = settings.gateway_id or f"{socket.gethostname()}-{os.getpid()}"
    return f"{prefix}-{os.urandom(3).hex()}"


class Gateway:
    def __init__(self, settings: Settings, log_: Log, redis: Any = None, pg: Any = None) -> None:
        self.ctx = Context(
            settings, log_, Metrics(), new_gateway_id(settings), limits_for(settings), redis, pg
        )
        self.access = Access(settings, log_, redis, pg)
        self.rooms = Rooms(self.ctx)
        self.unheld = UnheldReads(self._rebuild, settings.unheld_reads_at_once)
        self.tail = Tail(self.ctx, self.rooms, self.access)
        self.conns: set[Connection] = set()
        self.sockets: set[Socket] = set()
        self.draining = False
        self._empty = asyncio.Event()
        self._alive: asyncio.Task[None] | None = None
        # Its connections per letter and user, vouched for in Redis on its heartbeat's beat
        # (the lock sweep's view of who is here while the projector lags).
        self.attendance = Attendance(redis, self.ctx.gateway_id, ALIVE_TTL_S, ALIVE_EVERY_S)

    async def start(self) -> None:
        await self.ctx.verifier.start()  # the provider's keys before the first handshake
        await self.tail.start()
        if self.ctx.redis is not None:
            self._alive = asyncio.create_task(self._keep_alive())
            self.attendance.start()

    async def document(self, letter_id: str, fresh: bool = True) -> Doc[Any]:
        """The letter's current document: the held room's, else rebuilt (gateway/live/unheld.py).
        LogUnavailableError when it cannot be read. Not `fresh`: a held room's as it is, without
        waiting for writes other instances acknowledged (`_held`)."""
        room = await self._held(letter_id, fresh)
        if room is not None:
            return room.doc
        doc: Doc[Any] = Doc()
        if state := await self.unheld.state(letter_id):
            doc.apply_update(state)
        return doc

    async def state(self, letter_id: str, vector: bytes = b"") -> bytes:
        """What a Y.Doc at `vector` (b"": an empty one) lacks of the letter, with what its
        document holds pending (an update logged before the one it builds on), as a sync step 2
        answers: from the held room, else rebuilt, whose state carries it already
        (gateway/live/loader.py). LogUnavailableError when it cannot be read."""
        room = await self._held(letter_id)
        if room is not None:
            return room.state_for(vector or b"\x00")
        state = await self.unheld.state(letter_id)
        doc: Doc[Any] = Doc()
        if not state:  # no content
            return doc.get_update()
        if not vector:
            return state
        doc.apply_update(state)
        return with_pending(doc.get_update(vector), pending_parts(doc, [state]))

    async def _held(self, letter_id: str, fresh: bool = True) -> Room | None:
        """The letter's room once loaded, if this instance holds it (not failed), and, if
        `fresh`, once it holds what the log held when asked (Tail.caught_up): a write
        acknowledged by another instance is in what a read here answers, within the append
        timeout, else 503."""
        room = self.rooms.get(letter_id)
        if room is None or room.failed:
            return None
        try:
            await room.ready()
        except Refused as refusal:
            raise LogUnavailableError(f"letter {letter_id} could not be loaded") from refusal
        if fresh and not await self.tail.caught_up(letter_id, self.ctx.settings.append_timeout_s):
            self.ctx.metrics.refuse("read_behind")
            raise LogUnavailableError(f"letter {letter_id}: the log's tail is behind")
        return room

    async def write_update(self, meta: LetterMeta, claims: Claims, update: bytes) -> None:
        """A Yjs update from REST, once it is in the log (gateway/live/writes.py); Refused."""
        if self.draining:  # its rooms are being flushed and closed: no new ones
            raise Refused(LOG_UNAVAILABLE, "draining")
        room = await self.rooms.open(meta)  # held while idle_unload_s passes without writes
        await writes.write_update(self.ctx, room, claims, update)

    async def _rebuild(self, letter_id: str) -> bytes:
        ctx = self.ctx
        with ctx.metrics.unheld_reads.time():
            return (await loader.load(ctx.settings, ctx.log, letter_id, ctx.redis, ctx.pg)).state

    def may_reach(self, claims: Claims, meta: LetterMeta) -> bool:
        return claims.role == "service" or claims.firm_id == meta.firm_id

    async def serve(
        self,
        ws: WebSocket | DocumentSocket,
        claims: Claims,
        meta: LetterMeta,
        events: bool,
        kind: type[Connection] = Connection,
    ) -> None:
        """One session on the letter until it ends; `kind` DocumentConnection for a document of
        a multiplexed socket (gateway/live/addressed.py)."""
        await ws.accept()
        with self.ctx.update_bytes.held(user_key(claims)) as update_budget:
            conn = kind(self.ctx, ws, claims, events, update_budget)
            self.conns.add(conn)
            self._empty.clear()
            self.ctx.metrics.connections.inc()
            try:
                await self._serve(conn, meta)
            finally:
                self.conns.discard(conn)
                self.ctx.metrics.connections.dec()
                if not self.conns:
                    self._empty.set()

    async def _serve(self, conn: Connection, meta: LetterMeta) -> None:
        try:
            room = await self.rooms.join(meta, conn)
        except Refused as refusal:
            self.ctx.metrics.refuse(refusal.reason)
            conn.close(refusal.code, refusal.reason)
            await conn.finish()
            return
        reason, user = CLIENT_CLOSED_REASON, conn.claims.sub
        self.attendance.joined(meta.letter_id, user)
        try:
            reason = await conn.serve(room)
        finally:
            self.rooms.leave(room, conn, reason)
            self.attendance.left(meta.letter_id, user)

    async def drain(self) -> None:
        """Stop accepting, flush pending appends (their echoes), close clients with 1001."""
        if self.draining:
            return
        self.draining = True
        for room in self.rooms:
            await room.letters.flush()
        for conn in list(self.conns):
            conn.close(GOING_AWAY, SHUTDOWN_REASON)
        for room in self.rooms:  # joins and reads waiting for a load: refused now (1001, 503)
            room.stop_loading()
        if self.conns:
            try:
                async with asyncio.timeout(DRAIN_TIMEOUT_S):
                    await self._empty.wait()
            except TimeoutError:
                log.warning("%d connections did not close in time", len(self.conns))
        for sock in list(self.sockets):  # those with no session left, else already closed
            sock.shut(GOING_AWAY, SHUTDOWN_REASON)
        await self.close()

    async def close(self) -> None:
        await self.unheld.close()
        await self.rooms.close()
        await self.ctx.close_batchers()
        await self.tail.close()
        if self._alive is not None:
            self._alive.cancel()
            await asyncio.gather(self._alive, return_exceptions=True)
            self._alive = None
        await self.attendance.close()
        await self.ctx.verifier.close()

    async def _keep_alive(self) -> None:
        key, outage = alive_key(self.ctx.gateway_id), Outage()
        while True:
            try:
                await self.ctx.redis.set(key, b"1", ex=ALIVE_TTL_S)
            except Exception as exc:  # Redis down: the projector may reap our connections
                outage.failed(log, "cannot refresh %s: %r", key, exc)
            else:
                outage.recovered(log, "refreshing %s works again after %s", key, unit="failure")
            await asyncio.sleep(ALIVE_EVERY_S)
