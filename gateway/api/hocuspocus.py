"""The Hocuspocus endpoint `/v1/hocuspocus`: TipTap's `HocuspocusProvider` works unchanged.

    new HocuspocusProvider({ url: 'wss://HOST/v1/hocuspocus', name: 'letter-' + id, token })

The same letters as `/v1/{room}`, the same rules (gateway/live/addressed.py), another framing
(gateway/wire/hocuspocus.py): one socket may carry several documents, each authenticated by its
own in-band token. A document's auth runs the checks `/v1/{room}` runs at its handshake
(gateway/api/admission.py); a refusal is a permission-denied message for that document, with
the same reason, and the socket stays open for the others. While a document's auth runs, the
socket is not read, so nothing waits for it unbounded.

A refusal for now (over the user's handshake budget, the log unavailable) is not given at
once: a provider never sends its token again for a denied document while its socket stays
open, and 2.x never reconnects after the 4401 of the auth deadline. The document waits for
the refusal's retry-after and is checked again, for up to `rate_wait_max_s`, as messages over
the frame rate wait (gateway/live/pacing.py). Meanwhile the socket is read, its other
documents go on, and what the provider sends for the waiting document is kept for its
session (the first `BACKLOG` messages, its sync step 1 first; all waiting documents of a socket
together keep at most `max_message_bytes`: the rest is dropped, as its sync step 2 answering
ours brings its edits anyway). Still refused past that, it is
denied; a socket left with nothing authenticated then closes with 1013, after which every
provider reconnects.

Before accept only the origin and the drain are checked (the token is not in the URL). A socket
that has authenticated no document within `hocuspocus_auth_timeout_s` is closed (4401); so is
one whose documents have all ended (detached) if none authenticates within that time again
(meanwhile it is displaceable, as no user's connection cap counts it any more). Messages no
document takes (a denied provider keeps sending its edits) are dropped within the
per-connection message rate. The provider reconnects after 30 s without a message: a socket we
sent nothing for `hocuspocus_ping_s` gets a ping, if its provider understands pings (4.0 and
later, which send their version with the token; an older one would fail to parse the lone
byte; for those, as with Hocuspocus' own server, awareness renewals every 15 s keep it open).
`?events=1` opts in to our app messages (comments, locks, sessions) as stateless messages, both
ways. A token sent again for an authenticated document goes to its session, which asked for it
before the old one expires (gateway/live/addressed.py) and may extend itself with it; one sent
again for a waiting document is kept with its other messages (as Hocuspocus' server queues it),
the wait going on with the first, and is handed to its session once admitted (which ignores it
if it has not begun yet: the first token was checked a moment before).
"""

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, WebSocket

from gateway import outgoing
from gateway.api.admission import Admitted, Denied, admit
from gateway.api.waiting import Waiting
from gateway.api.websocket import deny, origin_allowed
from gateway.errors import MALFORMED, TOKEN_EXPIRED, TRY_AGAIN_LATER, Refused
from gateway.live.addressed import BACKLOG, DocumentConnection, DocumentSocket
from gateway.live.pacing import FrameRate, waiting_task
from gateway.preparse import ProtocolError
from gateway.service import Gateway
from gateway.transport import CLOSE_RECEIVED, READ_DIRECT
from gateway.wire import hocuspocus as hp

log = logging.getLogger(__name__)
router = APIRouter()
LOG_RETRY_S = 1.0  # a lookup refused while the log cannot be read is tried again after this


def retry_after(denied: Denied) -> float | None:
    """Seconds after which a refusal may be lifted; None for a final one (a token, a letter, a
    connection limit: a slot frees only when a session ends, and draining)."""
    if denied.retry_after_s:  # the user's handshake budget refills
        return denied.retry_after_s
    if denied.reason == "log_unavailable":
        return LOG_RETRY_S
    return None


@dataclass(eq=False)
class Deferred:
    """A document refused for now, waiting to be checked again until `until` (monotonic), and
    what its provider sent since."""

    token: str
    versioned: bool
    until: float
    messages: deque[hp.Addressed] = field(default_factory=deque)
    kept: int = 0  # their bytes


class Unauthenticated:
    """A socket with no document on it (none authenticated yet, or all detached), as the socket
    guard (gateway/api/waiting.py) sees it: displaceable, like a connection that has not sent a
    whole request.
    `/v1/{room}` never has such a WebSocket (it checks the token before accepting); without
    this, a flood of sockets that never authenticate would hold every place for 10 s each."""

    def __init__(self, socket: "Multiplexed", waiting: Waiting) -> None:
        self.socket, self.waiting, self.address = socket, waiting, socket.address

    def end(self, response: bytes, linger: bool = False) -> None:
        self.waiting.forget(self)
        # Not 4401, after which a 2.x provider never reconnects: a busy server, try again.
        self.socket.shut(TRY_AGAIN_LATER, "displaced before authenticating")


@router.websocket("/v1/hocuspocus")
async def hocuspocus(ws: WebSocket) -> None:
    gateway: Gateway = ws.app.state.gateway
    if gateway.draining:
        return await deny(ws, gateway, Denied(503, "draining"))
    if not origin_allowed(ws, gateway):
        return await deny(ws, gateway, Denied(403, "origin_not_allowed"))
    await ws.accept()
    events = ws.query_params.get("events") == "1"
    await Multiplexed(gateway, ws, events).run(getattr(ws.app.state, "waiting", None))


class Multiplexed:
    """One socket of the Hocuspocus framing and the documents on it.

    Messages are handled as uvicorn parses them (gateway/transport.py, READ_DIRECT), each handed
    to its document's connection at once, as on `/v1`; without the extension, by the ASGI read
    loop. What waits here is a document's auth, and a message for a document not authenticated
    over the socket's frame rate (gateway/live/pacing.py): meanwhile the socket is not read, and
    what it had already read waits in `_pending`, in order.
    """

    def __init__(self, gateway: Gateway, ws: WebSocket, events: bool) -> None:
        self.gateway, self.ws, self.events = gateway, ws, events
        self._guard: tuple[Waiting, Unauthenticated] | None = None  # the socket guard, if any
        self._displaceable = False  # in the guard: no document on the socket (yet, or again)
        self.address = ws.client.host if ws.client else None
        s = gateway.ctx.settings
        self._extensions: dict[str, Any] = ws.scope.get("extensions") or {}
        self._docs: dict[bytes, DocumentSocket] = {}  # by address
        self._sessions: set[asyncio.Task[None]] = set()
        # Messages for documents not authenticated (their own connections pace the others).
        paced = gateway.ctx.metrics.paced.inc
        self._unclaimed = FrameRate(s.rate_messages_per_s, s.rate_burst, s.rate_wait_max_s, paced)
        self._deadline: asyncio.Task[None] | None = None  # while no document is on the socket
        # Auths under way: our checks (they wait on Redis or the log), or a Deferred's wait.
        self._admitting = 0
        self._deferred: dict[bytes, Deferred] = {}  # by address
        # What they keep, all together: one largest message's worth (each keeps BACKLOG
        # messages at most, but how many documents wait is bounded only by the frame rate).
        self._kept, self._keep_max = 0, s.max_message_bytes
        self._waits: set[asyncio.Task[None]] = set()  # of the deferred documents
        self._closed = False
        self._over = False  # the read loop ended: nothing is re-armed
        self._closing: asyncio.Task[None] | None = None
        self._last_sent = time.monotonic()
        self._pings = False  # a provider that understands them said so (gateway/wire/hocuspocus.py)
        # Direct reads: the socket's hold, who holds it, and what waits for an auth or the rate.
        self._pause: Callable[[bool], None] | None = None
        self._holders: set[object] = set()
        self._wait: asyncio.Task[None] | None = None
        self._pending: deque[bytes | None] = deque()

    async def run(self, waiting: Waiting | None) -> None:
        """`waiting`: the server's socket guard, when it has one (uvicorn, server.py)."""
        metrics = self.gateway.ctx.metrics
        metrics.hocuspocus_sockets.inc()
        self.gateway.sockets.add(self)  # drained with 1001 even with no document on it
        if waiting is not None:
            self._guard = waiting, Unauthenticated(self, waiting)
        self._unauthenticated()
        keep_alive = asyncio.create_task(self._keep_alive())
        read_direct = self._extensions.get(READ_DIRECT)
        if read_direct is not None:
            self._pause = read_direct(self._on_message)
        try:
            await self._read()
        finally:
            self._over = True
            for task in (keep_alive, self._deadline, self._wait, *self._waits):
                if task is not None:
                    task.cancel()
            self._deferred.clear()
            self._kept = 0
            received = self._extensions.get(CLOSE_RECEIVED)
            lost = received is not None and not received()  # no close frame came
            for doc in list(self._docs.values()):
                doc.end(1006, lost)
            if self._sessions or self._waits:
                await asyncio.gather(*self._sessions, *self._waits, return_exceptions=True)
            if self._closing is not None:
                await asyncio.gather(self._closing, return_exceptions=True)
            self._not_waiting()
            self.gateway.sockets.discard(self)
            metrics.hocuspocus_sockets.dec()

    async def _read(self) -> None:
        """ASGI: the disconnect, and every message when reads are not direct."""
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            if self._closed:
                continue  # we are closing: wait for the client's close frame
            wait = self._guarded(message.get("bytes"))
            if wait is not None:
                await wait
            for doc in list(self._docs.values()):
                await doc.space()  # a document whose connection has not taken its share yet

    def _on_message(self, data: bytes | None) -> None:
        """A message straight from the socket (READ_DIRECT); must not raise."""
        if self._closed:
            return
        if self._wait is not None:  # an auth runs, or the rate: keep the order, read nothing more
            self._pending.append(data)
            return
        wait = self._guarded(data)
        if wait is not None:
            self._hold(self, True)
            self._wait = waiting_task(self._after_wait(wait), wait)

    async def _after_wait(self, wait: Coroutine[Any, Any, None]) -> None:
        await wait
        self._wait = None
        while self._pending and self._wait is None:
            self._on_message(self._pending.popleft())
        if self._wait is None:
            self._hold(self, False)

    def _hold(self, who: object, paused: bool) -> None:
        """Pause the socket's reading while anyone holds it: an auth, or a document's connection
        (it waits on Redis, the log is behind, or its room still loads)."""
        if paused:
            self._holders.add(who)
        else:
            self._holders.discard(who)
        if self._pause is not None:
            self._pause(bool(self._holders))

    def _guarded(self, data: bytes | None) -> Coroutine[Any, Any, None] | None:
        """Handle one message now; or return what handles it after a wait (an auth, the rate),
        to be awaited before the next one. Never raises, nor does what it returns."""
        try:
            return self._handle(data)
        except Refused as refusal:
            self.gateway.ctx.metrics.refuse(refusal.reason)
            self.shut(refusal.code, refusal.reason)
        except Exception as exc:  # nothing above raises anything else; a bug closes this socket
            log.exception("hocuspocus message refused: %r", exc)
            self.gateway.ctx.metrics.refuse("frame_error")
            self.shut(MALFORMED, "malformed message")
        return None

    def _handle(self, data: bytes | None) -> Coroutine[Any, Any, None] | None:
        if data is None:
            raise Refused(MALFORMED, "text_frame")
        try:
            msg = hp.parse(data)
        except ProtocolError as exc:
            raise Refused(exc.close_code, exc.reason) from None
        if msg is None:
            return None  # a pong
        doc = self._docs.get(msg.address)
        if doc is not None and not doc.ended:
            return self._hand(doc, msg)
        if msg.address in self._deferred:
            if msg.type == hp.CLOSE:  # detached while it waited: not admitted
                self._forget(msg.address)
                return None
            if msg.type == hp.AUTH:
                # Its token again: kept in its place for its session, as Hocuspocus' server
                # queues a second auth while the first runs; the wait goes on, and what it kept
                # is not dropped (checking it anew did, losing edits typed meanwhile).
                self._token_of(msg)
            elif msg.type not in hp.Y_PROTOCOLS and msg.type != hp.STATELESS:
                raise Refused(MALFORMED, "unknown_message_type")
            return self._at_rate(lambda: self._for_deferred(msg))
        if msg.type != hp.AUTH:  # a denied (or closed) document's provider keeps sending
            return self._at_rate(self._not_authenticated)
        token, versioned = self._token_of(msg)
        try:
            hp.name_of(msg.address)
        except ProtocolError as exc:
            raise Refused(exc.close_code, exc.reason) from None
        return self._at_rate(lambda: self._authenticate(msg.address, token, versioned))

    def _token_of(self, msg: hp.Addressed) -> tuple[str, bool]:
        """An auth message's token and whether its provider sent its version; Refused if
        malformed."""
        try:
            token, versioned = hp.token_of(msg.message)
        except ProtocolError as exc:
            raise Refused(exc.close_code, exc.reason) from None
        self._pings = self._pings or versioned
        return token, versioned

    def _not_authenticated(self) -> None:
        self.gateway.ctx.metrics.refuse("not_authenticated")

    def _for_deferred(self, msg: hp.Addressed) -> None:
        """A message for a document that waited to be admitted when it arrived: kept for its
        session, handed to it if it began meanwhile, dropped if it was denied."""
        doc = self._docs.get(msg.address)
        deferred = self._deferred.get(msg.address)
        if doc is not None and not doc.ended:
            self._hand_kept(doc, msg)
        elif (
            deferred is not None
            and len(deferred.messages) < BACKLOG
            and self._kept + len(msg.message) <= self._keep_max
        ):
            deferred.messages.append(msg)
            deferred.kept += len(msg.message)
            self._kept += len(msg.message)
        else:  # beyond the first ones its step 2, answering our step 1, carries its edits
            self._not_authenticated()

    def _hand_kept(self, doc: DocumentSocket, msg: hp.Addressed) -> None:
        """A message for a document that waited when it arrived: checked and paced then, so
        nothing raises and nothing waits (a token goes to the session, as on `_hand`)."""
        if msg.type == hp.AUTH:
            doc.token(self._token_of(msg)[0])
        else:
            self._hand(doc, msg)

    def _forget(self, address: bytes) -> Deferred | None:
        """A document no longer waiting; what it kept no longer counts."""
        deferred = self._deferred.pop(address, None)
        if deferred is not None:
            self._kept -= deferred.kept
        return deferred

    def _at_rate(
        self, act: Callable[[], Coroutine[Any, Any, None] | None]
    ) -> Coroutine[Any, Any, None] | None:
        """`act` now if within the socket's frame rate, else after waiting its turn (checked
        already: it must not raise); Refused (4429) for a socket over it too long."""
        if self._unclaimed.take():
            return act()
        return self._after_turn(self._unclaimed.wait_s(), act)

    async def _after_turn(
        self, wait_s: float, act: Callable[[], Coroutine[Any, Any, None] | None]
    ) -> None:
        await asyncio.sleep(wait_s)
        if self._closed:
            return
        then = act()
        if then is not None:
            await then

    def _hand(self, doc: DocumentSocket, msg: hp.Addressed) -> Coroutine[Any, Any, None] | None:
        message = msg.message
        if msg.type == hp.CLOSE:  # the provider detached: this document's session ends
            doc.end(1000)
            return None
        if msg.type == hp.AUTH:  # its token again: our token request answered (or a re-attach)
            try:
                token, _ = hp.token_of(message)
            except ProtocolError as exc:
                raise Refused(exc.close_code, exc.reason) from None
            return self._at_rate(lambda: doc.token(token))
        if msg.type == hp.STATELESS:
            if not self.events:
                return None  # the app's own stateless messages are nothing to us
            message = bytes([outgoing.MSG_APP]) + message[1:]  # [5, varString] -> [100, varString]
        elif msg.type not in hp.Y_PROTOCOLS:
            raise Refused(MALFORMED, "unknown_message_type")
        doc.push(message)  # checked by the connection as any /v1 message
        return None

    async def _authenticate(self, address: bytes, token: str, versioned: bool) -> None:
        self._admitting += 1
        try:
            await self._admit(address, token, versioned)
        except Exception as exc:  # nothing here should raise; the socket must not stay held
            log.exception("hocuspocus auth of %r failed: %r", address, exc)
            self.gateway.ctx.metrics.refuse("auth_failed")
            self.shut(MALFORMED, "authentication failed")
        finally:
            self._admitting -= 1

    async def _admit(self, address: bytes, token: str, versioned: bool) -> None:
        admitted = await self._check(address, token)
        if isinstance(admitted, Denied):
            until = time.monotonic() + self.gateway.ctx.settings.rate_wait_max_s
            if not self._later(address, admitted, Deferred(token, versioned, until)):
                await self._deny(address, admitted)
            return
        if self._closed:  # the socket went while the checks ran
            self.gateway.rooms.release(admitted.claims, admitted.meta.letter_id)
            return
        self._start(address, admitted, versioned)

    async def _check(self, address: bytes, token: str) -> Admitted | Denied:
        if self.gateway.draining:
            return Denied(503, "draining")
        host = self.ws.client.host if self.ws.client else None
        return await admit(self.gateway, token, hp.name_of(address), host=host)  # name checked

    def _later(self, address: bytes, denied: Denied, deferred: Deferred) -> bool:
        """Check the document again after the refusal's retry-after, if that is before its
        `until` (counted as a paced message); False for a refusal to be given."""
        wait = retry_after(denied)
        if wait is None or time.monotonic() + wait > deferred.until or self._closed:
            return False
        self.gateway.ctx.metrics.paced.inc()
        self._deferred[address] = deferred
        self._kept += deferred.kept  # refused again, it keeps what it kept: `_forget` took it off
        self._admitting += 1  # until it is admitted or denied: the deadline says 1013
        task = asyncio.create_task(self._again(address, wait, deferred))
        self._waits.add(task)
        task.add_done_callback(self._waits.discard)
        return True

    async def _again(self, address: bytes, wait: float, deferred: Deferred) -> None:
        try:
            await asyncio.sleep(wait)
            if self._deferred.get(address) is not deferred or self._closed:
                return  # detached, its token sent again, or the socket went
            admitted = await self._check(address, deferred.token)
            if self._deferred.get(address) is not deferred or self._closed:
                if isinstance(admitted, Admitted):
                    self.gateway.rooms.release(admitted.claims, admitted.meta.letter_id)
                return
            self._forget(address)
            if isinstance(admitted, Admitted):
                doc = self._start(address, admitted, deferred.versioned)
                for msg in deferred.messages:
                    self._hand_kept(doc, msg)
            elif not self._later(address, admitted, deferred):
                await self._deny(address, admitted)
        except Exception as exc:  # nothing here should raise
            log.exception("hocuspocus auth of %r failed: %r", address, exc)
            self.gateway.ctx.metrics.refuse("auth_failed")
            self.shut(MALFORMED, "authentication failed")
        finally:
            self._admitting -= 1

    async def _deny(self, address: bytes, denied: Denied) -> None:
        """A permission-denied message; a refusal for now that leaves the socket with nothing
        authenticated nor checked closes it with 1013 (every provider reconnects after it,
        2.x never after the 4401 of the auth deadline)."""
        self.gateway.ctx.metrics.refuse(denied.reason)
        prefix = outgoing.hp_address(address)
        await self.send(prefix + outgoing.hp_permission_denied(denied.reason))
        if retry_after(denied) is not None and not self._docs and self._admitting == 1:
            self.shut(TRY_AGAIN_LATER, denied.reason)

    def _start(self, address: bytes, admitted: Admitted, versioned: bool) -> DocumentSocket:
        """The document's session; from here to its start nothing waits (it releases the
        slot)."""
        self._not_waiting()
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        hold = self._hold if self._pause is not None else None
        client = self.ws.scope.get("client")
        doc = DocumentSocket(
            address, self.send, self.close, self._extensions, hold, versioned, client
        )
        self._docs[address] = doc
        name = hp.name_of(address)
        session = asyncio.create_task(self._session(doc, admitted), name=f"hocuspocus:{name}")
        self._sessions.add(session)
        session.add_done_callback(self._sessions.discard)
        return doc

    def _unauthenticated(self) -> None:
        """No document on the socket, yet or again (the last one detached): displaceable, and
        closed unless one authenticates within the deadline. Without this, a socket whose
        documents had all ended stayed open past its token's expiry, outside the guard and the
        user's connection cap, costing one handshake each."""
        if self._guard is not None and not self._displaceable:
            waiting, entry = self._guard
            waiting.wait(entry)
            self._displaceable = True
        if self._deadline is None:
            self._deadline = asyncio.create_task(self._auth_deadline())

    def _not_waiting(self) -> None:
        """Authenticated, or gone: no longer displaceable."""
        if self._guard is not None and self._displaceable:
            waiting, entry = self._guard
            waiting.forget(entry)
            self._displaceable = False

    async def _session(self, doc: DocumentSocket, admitted: Admitted) -> None:
        claims, meta = admitted.claims, admitted.meta
        try:
            # First the scope, then the document's own messages.
            await self.send(doc.prefix + outgoing.hp_authenticated(not claims.can_edit))
            await self.gateway.serve(doc, claims, meta, self.events, DocumentConnection)
        except Exception:
            log.exception("hocuspocus session on %s failed", meta.letter_id)
            await self.close(MALFORMED, "session failed")
        finally:
            self.gateway.rooms.release(claims, meta.letter_id)
            doc.end()
            if self._docs.get(doc.address) is doc:
                del self._docs[doc.address]
            if not self._docs and not (self._closed or self._over):
                self._unauthenticated()

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
        self.shut(code, reason)
        if self._closing is not None:
            await asyncio.shield(self._closing)

    def shut(self, code: int, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        self._pending.clear()
        self._closing = asyncio.create_task(self._close(code, reason))

    async def _close(self, code: int, reason: str) -> None:
        try:
            await self.ws.close(code, reason)
        except Exception as exc:
            log.debug("hocuspocus close failed: %r", exc)

    async def _auth_deadline(self) -> None:
        await asyncio.sleep(self.gateway.ctx.settings.hocuspocus_auth_timeout_s)
        self._deadline = None
        if self._docs:
            return
        self.gateway.ctx.metrics.refuse("auth_timeout")
        if self._admitting:  # our checks are slow (Redis, the log): not the provider's fault,
            # and a 2.x provider never reconnects after 4401
            self.shut(TRY_AGAIN_LATER, "authentication took too long")
        else:
            self.shut(TOKEN_EXPIRED, "no document authenticated in time")

    async def _keep_alive(self) -> None:
        every = self.gateway.ctx.settings.hocuspocus_ping_s
        while True:
            await asyncio.sleep(every - (time.monotonic() - self._last_sent))
            if self._pings and time.monotonic() - self._last_sent >= every * 0.99:
                await self.send(outgoing.HP_PING)
