"""One document's share of a multiplexed socket (the Hocuspocus framing, gateway/api/hocuspocus.py).

A `Connection` serves it as it serves a `/v1` WebSocket, through the methods of Starlette's
WebSocket it uses (receive, send_bytes, close) and the socket's write and abort extensions
(gateway/transport.py): frames go straight to the socket at the end of the tick, the outbox
takes over when it declines. So the limits, roles, identity, ownership and acknowledgement
rules are the same code for both framings. What differs is said here:

* inbound, the socket hands each document its messages (`push`), without the address;
* outbound, every message gets the document's address, so a broadcast is framed per address
  (not once for all); y-protocols' permission denied (a read-only role's refused edit) becomes
  a sync status of 0, and our app messages (type 100) become stateless messages;
* the sync handshake is Hocuspocus' (the room's, for peers with `hocuspocus_sync`): no step 1
  of ours when the session begins, our step 2 and step 1 in answer to the provider's;
* the acknowledgement of an update or a step 2 is a sync status of 1, not the update echoed:
  the provider counts its unsynced changes down with it;
* a slow consumer aborts the whole socket, as on `/v1`;
* closing the document closes the whole socket with the code, after a close message naming the
  reason for this document to providers from 4.0 on (2.x throws on that message, which ends a
  Node process; 2.x and 3.x read the reason in the socket's close). The provider then
  reconnects and authenticates every document it has on that socket again, with a fresh token
  when it has a token function. Token expiry, 4503, drain and refusals thus behave as on `/v1`;
* a token request goes out before the session's token expires (3.x and 4.x answer it with
  their token, 2.x ignores it): a later token of the same identity extends the session.
"""

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from gateway import outgoing
from gateway.auth import Claims
from gateway.context import Context
from gateway.errors import FORBIDDEN, RESET_CONNECTION, TOKEN_EXPIRED, Refused
from gateway.inbound import Inbound
from gateway.live.buckets import TokenBucket
from gateway.live.connection import UPDATE, Connection
from gateway.live.room import Room
from gateway.transport import (
    ABORT,
    CLOSE_RECEIVED,
    READ_DIRECT,
    WRITE_FRAME,
    Reader,
    binary_frame,
)
from gateway.wire import hocuspocus as hp

FINAL_FOR_2X = (TOKEN_EXPIRED, FORBIDDEN)  # @hocuspocus/provider 2.x stops for good on these
BACKLOG = 16  # messages handed to a document before the socket waits for it to take them
Hold = Callable[[object, bool], None]  # (who, paused): the socket reads while nobody holds it
# The last update framed for a document address (DocumentConnection.send_update). Held, so its
# identity cannot be taken by another bytes object while it is here.
_last_update: bytes = b""
_last_prefix: bytes = b""
_last_frame: bytes = b""


class DocumentSocket:
    def __init__(
        self,
        address: bytes,
        send: Callable[[bytes], Awaitable[None]],
        close_socket: Callable[[int, str], Awaitable[None]],
        extensions: dict[str, Any],
        hold: Hold | None = None,
        versioned: bool = False,
        client: tuple[str, int] | None = None,
    ) -> None:
        """`extensions`: the socket's; writing frames and aborting are shared. With `hold` (the
        socket reads directly: gateway/transport.py, READ_DIRECT) the connection gets its
        messages handed as the socket parses them, as on `/v1`, and `hold(self, paused)` pauses
        the socket's reading for it; without, it reads them from `receive`. `versioned`: its
        provider sent its version with the token (4.0 and later). `client`: the socket's ASGI
        client (host, port): a refused token renewal is logged with its host."""
        self.address = address
        shared = {k: v for k, v in extensions.items() if k in (WRITE_FRAME, ABORT)}
        self._lost = False  # ended by its socket gone without a close frame (`end`)
        if CLOSE_RECEIVED in extensions:  # the document's end says how its client left
            shared[CLOSE_RECEIVED] = lambda: not self._lost
        if hold is not None:
            shared[READ_DIRECT] = self._read_direct
        self.scope: dict[str, Any] = {"extensions": shared, "client": client}
        self.prefix = outgoing.hp_address(address)
        self._send, self._close_socket, self._hold = send, close_socket, hold
        self._reader: Reader | None = None
        self._inbox: deque[dict[str, Any]] = deque()
        self._arrived = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()
        self.ended = False
        self.versioned = versioned
        self.on_token: Callable[[str], None] | None = None  # the session's, once it began

    # -- from the socket -----------------------------------------------------------------------

    def token(self, token: str) -> None:
        """The provider sent its token again, for this authenticated document: mostly the
        answer to our token request (DocumentConnection)."""
        if self.on_token is not None and not self.ended:
            self.on_token(token)

    def push(self, message: bytes) -> None:
        """A message for this document, from its type on."""
        if self.ended:
            return
        if self._reader is not None:
            self._reader(message)
            return
        self._inbox.append({"type": "websocket.receive", "bytes": message})
        self._arrived.set()
        if len(self._inbox) >= BACKLOG:  # the connection has not begun to read (its room loads)
            self._space.clear()
            if self._hold is not None:
                self._hold(self, True)

    def _read_direct(self, reader: Reader) -> Callable[[bool], None]:
        """READ_DIRECT for the connection: what arrived before it, then each message as the
        socket parses it."""
        queued = [m for m in self._inbox if m["type"] == "websocket.receive"]
        self._inbox = deque(m for m in self._inbox if m["type"] != "websocket.receive")
        self._reader = reader
        for message in queued:
            reader(message["bytes"])
        self._space.set()
        assert self._hold is not None
        hold = self._hold
        hold(self, False)
        return lambda paused: hold(self, paused and not self.ended)

    async def space(self) -> None:
        """Wait until this document took enough of what it was handed (the socket stops reading
        meanwhile, as `/v1` does for one connection that waits)."""
        await self._space.wait()

    def end(self, code: int = 1000, lost: bool = False) -> None:
        """The client closed the document, or the socket went away (`lost`: without a close
        frame): nothing more arrives."""
        if self.ended:
            return
        self.ended, self._lost = True, lost
        self._inbox.append({"type": "websocket.disconnect", "code": code})
        self._arrived.set()
        self._space.set()
        if self._hold is not None:  # whatever this document held the socket for is over
            self._hold(self, False)

    # -- what Connection uses of a WebSocket ---------------------------------------------------

    async def accept(self) -> None:
        pass  # the socket is open; the document was authenticated in-band

    async def receive(self) -> dict[str, Any]:
        while not self._inbox:
            self._arrived.clear()
            await self._arrived.wait()
        message = self._inbox.popleft()
        if len(self._inbox) < BACKLOG:
            self._space.set()
        return message

    async def send_bytes(self, data: bytes) -> None:
        await self._send(self.prefix + data)

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self.end(code)
        if self.versioned:
            await self._send(self.prefix + outgoing.hp_close(reason or ""))
        elif code in FINAL_FOR_2X:
            # 2.x and 3.x send no version; 2.x never reconnects after these, not even to ask its
            # token function again. Both reconnect after Hocuspocus' reset code.
            code = RESET_CONNECTION
        await self._close_socket(code, reason or "")


class DocumentConnection(Connection):
    """Every sync step 2 and update a provider sends is answered with one sync status: it counts
    its step 2 as an unsynced change too, and shows unsaved changes until the count is 0. The
    handshake is the room's (`hocuspocus_sync`); the statuses are what this class adds."""

    hocuspocus_sync = True
    ws: DocumentSocket

    def __init__(
        self,
        ctx: Context,
        ws: DocumentSocket,
        claims: Claims,
        events: bool,
        update_budget: TokenBucket,
    ) -> None:
        super().__init__(ctx, ws, claims, events, update_budget)
        # Updates dropped before the provider's step 2 (it carries them): their statuses wait
        # for its acknowledgement.
        self._owed = 0
        self._carrier: bytes | None = None
        # Before its token expires the provider is asked for another, verified as at auth.
        self.session.ask_ahead(self._request_token, ctx.settings.hocuspocus_token_request_s)
        ws.on_token = self.session.renew_later

    def _request_token(self) -> None:
        # 3.x and later providers answer with their token (a `token` function is called again);
        # 2.x ignores it, and reconnects once the session ends at expiry.
        self.send(outgoing.HP_TOKEN_REQUEST, "token_request")

    def send(self, data: bytes, kind: str, frame: bytes | None = None) -> None:
        if kind == "auth":  # the only one we send: a read-only role's edit refused
            data, kind = outgoing.HP_NOT_APPLIED, "sync_status"
        elif kind == "app":  # [100, varString] -> [5, varString]
            data = bytes([hp.STATELESS]) + data[1:]
        self._queue(kind, data, self._framed(data))

    def send_update(self, update: bytes, frame: bytes | None = None) -> None:
        # A broadcast reaches the room's peers one after another, and the peers of a letter
        # mostly share one address: the frame is built once per (update, address) in a row.
        global _last_update, _last_prefix, _last_frame
        prefix = self.ws.prefix
        if update is not _last_update or prefix != _last_prefix:
            framed = self._framed(outgoing.update(update))
            if framed is None:
                self._queue(UPDATE, update, None)
                return
            _last_update, _last_prefix, _last_frame = update, prefix, framed
        self._queue(UPDATE, update, _last_frame)

    def acknowledge(self, update: bytes, frame: bytes | None = None) -> None:
        """The update is in the log; a step 2 that carries updates dropped before it
        (Connection._before_sync) settles theirs too."""
        self.send(outgoing.HP_APPLIED, "sync_status")
        if update is self._carrier:
            self._settle_owed()

    def _before_sync(self, refusal: Refused, data: bytes) -> bool:
        if not super()._before_sync(refusal, data):
            return False
        self._owed += 1  # the provider counts it unsynced: its status comes with the step 2's
        return True

    def _settle_owed(self) -> None:
        for _ in range(self._owed):
            self.send(outgoing.HP_APPLIED, "sync_status")
        self._owed, self._carrier = 0, None

    def _framed(self, message: bytes) -> bytes | None:
        """The frame for the socket (the outbox, used when it declines, adds the address)."""
        return binary_frame(self.ws.prefix + message) if self._write_frame is not None else None

    def _deliver(self, room: Room, msg: Inbound, clients: list[int] | None = None) -> None:
        if msg.kind == "sync_step2" and self._owed:
            self._carrier = msg.body  # acknowledged as itself (the room passes it back)
        room.receive(self, msg, clients)
        info = msg.info
        if info is None:
            return
        # What the room neither logs nor refuses out loud is settled now: an empty update, or a
        # read-only role's step 2 that adds no content (its refused content is a status of 0,
        # which the room sends), or its update of deletions only.
        read_only_nothing = not self.claims.can_edit and not info.blocks
        if info.is_empty or (msg.kind == "sync_step2" and read_only_nothing):
            self.send(outgoing.HP_APPLIED, "sync_status")
            if msg.body is self._carrier:  # nothing new: the server had it all already
                self._settle_owed()
        elif read_only_nothing:
            self.send(outgoing.HP_NOT_APPLIED, "sync_status")
