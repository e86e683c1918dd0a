"""The Hocuspocus endpoint `/v1/hocuspocus`: TipTap's `HocuspocusProvider` works unchanged.

    new HocuspocusProvider({ url: 'wss://HOST/v1/hocuspocus', name: 'letter-' + id, token })

The same letters as `/v1/{room}`, the same rules (gateway/live/addressed.py), another framing
(gateway/wire/hocuspocus.py): one socket may carry several documents, each authenticated by its
own in-band token. A document's auth runs the checks `/v1/{room}` runs at its handshake
(gateway/api/admission.py); a refusal is a permission-denied message for that document, with
the same reason, and the socket stays open for the others. While a document's auth runs, the
socket is not read, so nothing waits for it unbounded.

Before accept only the origin and the drain are checked (the token is not in the URL). A socket
that has authenticated no document within `hocuspocus_auth_timeout_s` is closed (4401), and
messages no document takes (a denied provider keeps sending its edits) are dropped within the
per-connection message rate. The provider reconnects after 30 s without a message: a socket we
sent nothing for `hocuspocus_ping_s` gets a ping. `?events=1` opts in to our app messages
(comments, locks, sessions) as stateless messages, both ways.
"""

import asyncio
import logging
import time

from fastapi import APIRouter, WebSocket

from gateway.api.admission import Admitted, Denied, admit
from gateway.api.websocket import deny, origin_allowed
from gateway.errors import MALFORMED, RATE_LIMITED, TOKEN_EXPIRED, Refused
from gateway.live.addressed import DocumentConnection, DocumentSocket
from gateway.live.buckets import TokenBucket
from gateway.outgoing import MSG_APP
from gateway.preparse import ProtocolError
from gateway.service import Gateway
from gateway.transport import ABORT
from gateway.wire import hocuspocus as hp

log = logging.getLogger(__name__)
router = APIRouter()


@router.websocket("/v1/hocuspocus")
async def hocuspocus(ws: WebSocket) -> None:
    gateway: Gateway = ws.app.state.gateway
    if gateway.draining:
        return await deny(ws, gateway, Denied(503, "draining"))
    if not origin_allowed(ws, gateway):
        return await deny(ws, gateway, Denied(403, "origin_not_allowed"))
    await ws.accept()
    await Multiplexed(gateway, ws, events=ws.query_params.get("events") == "1").run()


class Multiplexed:
    """One socket of the Hocuspocus framing and the documents on it."""

    def __init__(self, gateway: Gateway, ws: WebSocket, events: bool) -> None:
        self.gateway, self.ws, self.events = gateway, ws, events
        s = gateway.ctx.settings
        self._docs: dict[str, DocumentSocket] = {}  # by address
        self._sessions: set[asyncio.Task[None]] = set()
        self._unclaimed = TokenBucket(s.rate_messages_per_s, s.rate_burst)
        self._authenticated = False
        self._closed = False
        self._last_sent = time.monotonic()

    async def run(self) -> None:
        metrics = self.gateway.ctx.metrics
        metrics.hocuspocus_sockets.inc()
        timers = [asyncio.create_task(self._deadline()), asyncio.create_task(self._keep_alive())]
        try:
            await self._read()
        finally:
            for timer in timers:
                timer.cancel()
            for doc in list(self._docs.values()):
                doc.end(1006)
            if self._sessions:
                await asyncio.gather(*self._sessions, return_exceptions=True)
            metrics.hocuspocus_sockets.dec()

    async def _read(self) -> None:
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            if self._closed:
                continue  # we are closing: wait for the client's close frame
            try:
                await self._handle(message.get("bytes"))
            except Refused as refusal:
                self.gateway.ctx.metrics.refuse(refusal.reason)
                await self.close(refusal.code, refusal.reason)

    async def _handle(self, data: bytes | None) -> None:
        if data is None:
            raise Refused(MALFORMED, "text_frame")
        try:
            msg = hp.parse(data)
        except ProtocolError as exc:
            raise Refused(exc.close_code, exc.reason) from None
        if msg is None:
            return  # a pong
        doc = self._docs.get(msg.address)
        if doc is not None and not doc.ended:
            return await self._hand(doc, msg)
        if not self._unclaimed.take():
            raise Refused(RATE_LIMITED, "rate_limited")
        if msg.type != hp.AUTH:  # a denied (or closed) document's provider keeps sending
            self.gateway.ctx.metrics.refuse("not_authenticated")
            return
        try:
            token = hp.token_of(msg.message)
        except ProtocolError as exc:
            raise Refused(exc.close_code, exc.reason) from None
        await self._authenticate(msg.address, msg.name, token)

    async def _hand(self, doc: DocumentSocket, msg: hp.Addressed) -> None:
        message = msg.message
        if msg.type == hp.CLOSE:  # the provider detached: this document's session ends
            doc.end(1000)
            return
        if msg.type == hp.AUTH:
            return  # a token sent again (a provider re-attached fast): already authenticated
        if msg.type == hp.STATELESS:
            if not self.events:
                return  # the app's own stateless messages are nothing to us
            message = bytes([MSG_APP]) + message[1:]  # [5, varString] -> [100, varString]
        elif msg.type not in hp.Y_PROTOCOLS:
            raise Refused(MALFORMED, "unknown_message_type")
        doc.push(message)  # checked by the connection as any /v1 message
        await doc.space()

    async def _authenticate(self, address: str, name: str, token: str) -> None:
        prefix = hp.address(address)
        if self.gateway.draining:
            admitted: Admitted | Denied = Denied(503, "draining")
        else:
            admitted = await admit(self.gateway, token, name)
        if isinstance(admitted, Denied):
            self.gateway.ctx.metrics.refuse(admitted.reason)
            await self.send(prefix + hp.permission_denied(admitted.reason))
            return
        self._authenticated = True
        claims = admitted.claims
        abort = (self.ws.scope.get("extensions") or {}).get(ABORT)
        doc = DocumentSocket(address, self.send, self.close, abort)
        self._docs[address] = doc
        # Before the room's sync step 1, which the session sends first.
        await self.send(prefix + hp.authenticated(read_only=not claims.can_edit))
        session = asyncio.create_task(self._session(doc, admitted), name=f"hocuspocus:{name}")
        self._sessions.add(session)
        session.add_done_callback(self._sessions.discard)

    async def _session(self, doc: DocumentSocket, admitted: Admitted) -> None:
        claims, meta = admitted.claims, admitted.meta
        try:
            await self.gateway.serve(doc, claims, meta, self.events, DocumentConnection)
        except Exception:
            log.exception("hocuspocus session on %s failed", meta.letter_id)
            await self.close(MALFORMED, "session failed")
        finally:
            self.gateway.rooms.release(claims, meta.letter_id)
            doc.end()
            if self._docs.get(doc.address) is doc:
                del self._docs[doc.address]

    async def send(self, data: bytes) -> None:
        if self._closed:
            return
        self._last_sent = time.monotonic()
        try:
            await self.ws.send_bytes(data)
        except Exception as exc:  # the client went away: the read loop ends with it
            log.debug("hocuspocus send failed: %r", exc)

    async def close(self, code: int, reason: str) -> None:
        """Close the socket (every document on it): the provider reconnects and resyncs."""
        if self._closed:
            return
        self._closed = True
        try:
            await self.ws.close(code, reason)
        except Exception as exc:
            log.debug("hocuspocus close failed: %r", exc)

    async def _deadline(self) -> None:
        await asyncio.sleep(self.gateway.ctx.settings.hocuspocus_auth_timeout_s)
        if not self._authenticated:
            self.gateway.ctx.metrics.refuse("auth_timeout")
            await self.close(TOKEN_EXPIRED, "no document authenticated in time")

    async def _keep_alive(self) -> None:
        every = self.gateway.ctx.settings.hocuspocus_ping_s
        while True:
            await asyncio.sleep(every - (time.monotonic() - self._last_sent))
            if time.monotonic() - self._last_sent >= every * 0.99:
                await self.send(hp.PING_MESSAGE)
