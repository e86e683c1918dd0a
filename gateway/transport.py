"""Uvicorn's WebSocket protocol (websockets' sans-I/O implementation), plus one extension:
writing an already framed binary message straight to the socket.

Through ASGI, every message to every peer costs a task wake-up for the connection's writer,
Starlette's and uvicorn's send wrappers and websockets' framing; at 500 connections that was a
large share of the gateway's CPU. A server frame is not masked, so the bytes of a frame are the
same for every peer: the room frames a message once (`binary_frame`) and each connection with an
empty outbox writes it, with its other frames of the same tick (`EndOfTick`), in one call
(`scope["extensions"][WRITE_FRAME](frames) -> bool`). The
extension declines (False) whenever the ASGI path must be used: before the handshake completed,
after a close, when a compression extension was negotiated, or while the transport's buffer is
above its high-water mark, so that flow control (and slow-consumer detection) stays uvicorn's.
"""

import asyncio
from typing import Protocol

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State

WRITE_FRAME = "steno.write_frame"
ABORT = "steno.abort"  # drop the TCP connection now (a slow consumer gets no close handshake)


def binary_frame(message: bytes) -> bytes:
    """One unmasked binary frame (server to client), as websockets would write it."""
    return Frame(Opcode.BINARY, message).serialize(mask=False)


# What `write_frame` reads of uvicorn's protocol (uvicorn 0.54); a version without them gets no
# extension, and every message takes the ASGI path.
_NEEDS = ("handshake_complete", "close_sent", "writable", "conn", "transport")


class SocketProtocol(WebSocketsSansIOProtocol):
    def handle_connect(self, event: object) -> None:
        super().handle_connect(event)  # type: ignore[arg-type]
        scope = getattr(self, "scope", None)  # absent when the handshake was refused
        if scope is not None and all(hasattr(self, name) for name in _NEEDS):
            scope["extensions"][WRITE_FRAME] = self.write_frame
            scope["extensions"][ABORT] = self.abort

    def abort(self) -> None:
        if not self.transport.is_closing():
            self.transport.abort()

    def write_frame(self, frame: bytes) -> bool:
        """Write frames from `binary_frame` (one or several, concatenated) now; False: send them
        through ASGI instead."""
        if (
            not self.handshake_complete
            or self.close_sent
            or self.conn.state is not State.OPEN
            or self.conn.extensions
            or not self.writable.is_set()
            or self.transport.is_closing()
        ):
            return False
        self.transport.write(frame)
        return True


class Flushable(Protocol):
    def flush_tick(self) -> None: ...


class EndOfTick:
    """Sockets with frames waiting for the end of this event-loop tick.

    A send on loopback TCP costs ~9 us of a core (the receiver's side runs in it too), one per
    frame per peer. Frames for the same peer in one tick go out in one write: under load a
    tick handles many updates of a letter, so the busier the gateway, the more a write carries
    (Hocuspocus batches per tick the same way). A frame waits at most for the callbacks that
    were already ready.
    """

    def __init__(self) -> None:
        self._due: list[Flushable] = []

    def add(self, conn: Flushable) -> None:
        """`conn` has frames for this tick (called once per tick, by its first frame)."""
        if not self._due:
            asyncio.get_running_loop().call_soon(self._flush)
        self._due.append(conn)

    def _flush(self) -> None:
        due, self._due = self._due, []
        for conn in due:
            conn.flush_tick()
