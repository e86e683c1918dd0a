"""Frames for one client in one event-loop tick leave in one socket write, in order; when the
socket declines the direct write, the same frames go through ASGI, still in order.

The socket is a stand-in for uvicorn's (gateway/transport.py) so the writes can be counted;
the live path is covered by every gateway test (test_smoke checks it is in use)."""

import asyncio
import time
from typing import Any

from gateway.auth import Claims
from gateway.context import Context
from gateway.errors import SLOW_CONSUMER
from gateway.inbound import limits_for
from gateway.live.buckets import TokenBucket
from gateway.live.connection import Connection
from gateway.metrics import Metrics
from gateway.transport import ABORT, WRITE_FRAME, binary_frame
from schemas.settings import Settings


class Socket:
    def __init__(self, takes_direct_writes: bool) -> None:
        self.takes = takes_direct_writes
        self.scope = {"extensions": {WRITE_FRAME: self.write_frame, ABORT: lambda: None}}
        self.direct: list[bytes] = []  # one item per socket write
        self.asgi: list[bytes] = []  # one item per ASGI message
        self.sent = asyncio.Event()

    def write_frame(self, frame: bytes) -> bool:
        if self.takes:
            self.direct.append(frame)
        return self.takes

    async def send_bytes(self, data: bytes) -> None:
        self.asgi.append(data)
        self.sent.set()

    async def close(self, code: int, reason: str) -> None:
        pass


def connection(socket: Socket, **settings_kw: Any) -> Connection:
    settings = Settings(**settings_kw)
    limits = limits_for(settings)
    ctx = Context(settings, None, Metrics(), "gw", limits)  # type: ignore[arg-type]  # no log
    claims = Claims(sub="u", firm_id="f", name="U", role="editor", exp=time.time() + 60)
    budget = TokenBucket(settings.update_bytes_per_s, settings.update_bytes_burst)
    return Connection(ctx, socket, claims, False, budget)  # type: ignore[arg-type]


MESSAGES = [bytes([1, 3, 1, 2, 3]), bytes([0, 0, 1, 0]), bytes([1, 3, 4, 5, 6])]


async def next_tick() -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def test_one_tick_one_write_in_order() -> None:
    socket = Socket(takes_direct_writes=True)
    conn = connection(socket)
    for message in MESSAGES:
        conn.send(message, "awareness")
    assert socket.direct == []  # nothing before the tick ends
    await next_tick()
    assert socket.direct == [b"".join(binary_frame(m) for m in MESSAGES)]
    conn.send(MESSAGES[0], "awareness")
    await next_tick()
    assert socket.direct[1:] == [binary_frame(MESSAGES[0])]  # a new tick, a new write
    assert conn.ctx.metrics.messages_out.counts == {"awareness": 4}  # each frame once
    conn.close(1000, "done")
    await conn.finish()


async def test_a_declined_tick_goes_through_asgi_in_order() -> None:
    socket = Socket(takes_direct_writes=False)
    conn = connection(socket)
    for message in MESSAGES:
        conn.send(message, "awareness")
    await next_tick()
    async with asyncio.timeout(5):
        while len(socket.asgi) < len(MESSAGES):
            socket.sent.clear()
            await socket.sent.wait()
    assert socket.asgi == MESSAGES
    assert socket.direct == []
    conn.close(1000, "done")
    await conn.finish()


async def test_a_declined_tick_beyond_the_outbox_bound_is_a_slow_consumer() -> None:
    socket = Socket(takes_direct_writes=False)  # a paused transport: the client does not read
    conn = connection(socket, max_outbox_bytes=1000)
    for _ in range(3):
        conn.send(bytes(400), "awareness")  # each frame alone fits; the tick does not
    await next_tick()
    assert conn.closing == (SLOW_CONSUMER, "too slow")
    assert conn.ctx.metrics.refusals.labels("slow_consumer")._value.get() == 1
    assert socket.asgi == []  # the backlog is dropped, not sent
    await conn.finish()
