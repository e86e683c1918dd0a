"""Uvicorn's WebSocket protocol (websockets' sans-I/O implementation), plus two extensions:
writing an already framed binary message straight to the socket, and handing each data message
straight to the connection as it is parsed.

Writes. Through ASGI, every message to every peer costs a task wake-up for the connection's
writer, Starlette's and uvicorn's send wrappers and websockets' framing; at 500 connections that
was a large share of the gateway's CPU. A server frame is not masked, so the bytes of a frame
are the same for every peer: the room frames a message once (`binary_frame`) and each
connection with an empty outbox writes it, with its other frames of the same tick (`EndOfTick`),
in one call (`scope["extensions"][WRITE_FRAME](frames) -> bool`). The extension declines
(False) whenever the ASGI path must be used: before the handshake completed, after a close,
when a compression extension was negotiated, or while the transport's buffer is above its
high-water mark, so that flow control (and slow-consumer detection) stays uvicorn's.

Reads. Through ASGI, every inbound message is queued, the socket paused (two epoll_ctl calls
per message, pause and resume) and the connection's task woken to fetch it through Starlette.
`scope["extensions"][READ_DIRECT](reader) -> hold` makes the protocol call `reader(data)` (None
for a text message) from `data_received` instead, in order, messages queued before it first;
`hold(True)` pauses reading while the connection cannot take more (it waits on Redis) and
`hold(False)` resumes. The close handshake and the disconnect still reach the app through ASGI.
"""

import asyncio
from collections.abc import Callable
from typing import Protocol

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State

WRITE_FRAME = "steno.write_frame"
ABORT = "steno.abort"  # drop the TCP connection now (a slow consumer gets no close handshake)
READ_DIRECT = "steno.read_direct"
# () -> bool: whether the client sent a close frame (uvicorn reports a socket gone without one
# as 1005, as it does a close frame without a status: the audit tells "lost" from "closed").
CLOSE_RECEIVED = "steno.close_received"
Reader = Callable[[bytes | None], None]


def binary_frame(message: bytes) -> bytes:
    """One unmasked binary frame (server to client), as websockets would write it."""
    return Frame(Opcode.BINARY, message).serialize(mask=False)


# What `write_frame` reads of uvicorn's protocol (uvicorn 0.54); a version without them gets no
# extension, and every message takes the ASGI path.
_NEEDS = ("handshake_complete", "close_sent", "writable", "conn", "transport")
_NEEDS_TO_READ = ("queue", "read_paused", "frames", "curr_msg_data_type")


class SocketProtocol(WebSocketsSansIOProtocol):
    _reader: Reader | None = None

    def handle_connect(self, event: object) -> None:
        super().handle_connect(event)  # type: ignore[arg-type]
        scope = getattr(self, "scope", None)  # absent when the handshake was refused
        if scope is not None and all(hasattr(self, name) for name in _NEEDS):
            scope["extensions"][WRITE_FRAME] = self.write_frame
            scope["extensions"][ABORT] = self.abort
            scope["extensions"][CLOSE_RECEIVED] = self.close_received
            if all(hasattr(self, name) for name in _NEEDS_TO_READ):
                scope["extensions"][READ_DIRECT] = self.read_direct

    def read_direct(self, reader: Reader) -> Callable[[bool], None]:
        """From now on hand data messages to `reader` as they arrive, those already queued for
        ASGI first; returns `hold(paused)`. `reader` must not raise."""
        self._reader = reader
        queued = [self.queue.get_nowait() for _ in range(self.queue.qsize())]
        for message in queued:  # a disconnect ends the queue: nothing follows it
            if message["type"] == "websocket.receive":
                reader(message.get("bytes"))
            else:
                self.queue.put_nowait(message)
        self.hold(False)  # uvicorn paused reading when it queued a message
        return self.hold

    def hold(self, paused: bool) -> None:
        if paused == self.read_paused or self.transport.is_closing():
            return
        self.read_paused = paused
        if paused:
            self.transport.pause_reading()
        else:
            self.transport.resume_reading()

    def send_receive_event_to_app(self) -> None:
        reader = self._reader
        if reader is None:
            return super().send_receive_event_to_app()
        data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
        self.frames = []
        if not self.close_sent:  # past our close, uvicorn discards them too
            reader(data if self.curr_msg_data_type == "bytes" else None)

    def close_received(self) -> bool:
        return self.conn.close_rcvd is not None

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
