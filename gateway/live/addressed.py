"""One document's share of a multiplexed socket (the Hocuspocus framing, gateway/api/hocuspocus.py).

A `Connection` serves it as it serves a `/v1` WebSocket, through the methods of Starlette's
WebSocket it uses (receive, send_bytes, close; no transport extensions, so its frames go through
its outbox and writer). So the limits, roles, identity, ownership and acknowledgement rules are
the same code for both framings. What differs is said here:

* outbound, every message gets the document's address; y-protocols' permission denied (a
  read-only role's refused edit) becomes a sync status of 0, and our app messages (type 100)
  become stateless messages;
* the acknowledgement of an update is a sync status of 1, not the update echoed: the provider
  counts its unsynced changes down with it;
* a slow consumer aborts the whole socket, as on `/v1`;
* closing the document closes the whole socket with the code (after a close message naming the
  reason for this document): the provider then reconnects and authenticates every document it
  has on that socket again, with a fresh token when it has a token function. Token expiry,
  4503, drain and refusals thus behave as on `/v1`.
"""

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from gateway import outgoing
from gateway.inbound import Inbound
from gateway.live.connection import Connection
from gateway.live.room import Room
from gateway.transport import ABORT
from gateway.wire import hocuspocus as hp

BACKLOG = 16  # messages handed to a document before the socket waits for it to take them
APPLIED = hp.sync_status(True)
NOT_APPLIED = hp.sync_status(False)


class DocumentSocket:
    def __init__(
        self,
        address: str,
        send: Callable[[bytes], Awaitable[None]],
        close_socket: Callable[[int, str], Awaitable[None]],
        abort: Callable[[], None] | None = None,
    ) -> None:
        self.address = address
        # A slow consumer is aborted (gateway/transport.py): its writer waits on the socket.
        self.scope: dict[str, Any] = {"extensions": {ABORT: abort} if abort else {}}
        self._prefix = hp.address(address)
        self._send, self._close_socket = send, close_socket
        self._inbox: deque[dict[str, Any]] = deque()
        self._arrived = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()
        self.ended = False

    # -- from the socket -----------------------------------------------------------------------

    def push(self, message: bytes) -> None:
        """A message for this document, from its type on."""
        if self.ended:
            return
        self._inbox.append({"type": "websocket.receive", "bytes": message})
        self._arrived.set()
        if len(self._inbox) >= BACKLOG:
            self._space.clear()

    async def space(self) -> None:
        """Wait until this document took enough of what it was handed (the socket stops reading
        meanwhile, as `/v1` does for one connection that waits)."""
        await self._space.wait()

    def end(self, code: int = 1000) -> None:
        """The client closed the document, or the socket went away: nothing more arrives."""
        if self.ended:
            return
        self.ended = True
        self._inbox.append({"type": "websocket.disconnect", "code": code})
        self._arrived.set()
        self._space.set()

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
        if data[0] == outgoing.MSG_AUTH:  # the only one we send: a read-only edit refused
            data = NOT_APPLIED
        elif data[0] == outgoing.MSG_APP:  # [100, varString] -> [5, varString]
            data = bytes([hp.STATELESS]) + data[1:]
        await self._send(self._prefix + data)

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self.end(code)
        await self._send(self._prefix + hp.close(reason or ""))
        await self._close_socket(code, reason or "")


class DocumentConnection(Connection):
    """Every sync step 2 and update a provider sends is answered with one sync status: it counts
    its step 2 as an unsynced change too, and shows unsaved changes until the count is 0."""

    acknowledges_sync_step2 = True

    def acknowledge(self, update: bytes, frame: bytes | None = None) -> None:
        """The update is in the log."""
        self.send(APPLIED, "sync_status")

    def _deliver(self, room: Room, msg: Inbound, clients: list[int] | None = None) -> None:
        room.receive(self, msg, clients)
        info = msg.info
        if info is None:
            return
        # What the room neither logs nor refuses out loud is settled now: an empty update, or a
        # read-only role's step 2 that adds no content (its refused content is a status of 0).
        if info.is_empty or (
            msg.kind == "sync_step2" and not self.claims.can_edit and not info.blocks
        ):
            self.send(APPLIED, "sync_status")
        elif not self.claims.can_edit and not info.blocks:
            self.send(NOT_APPLIED, "sync_status")  # a read-only update of deletions only
