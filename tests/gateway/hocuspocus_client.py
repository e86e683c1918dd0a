"""A minimal client of the Hocuspocus framing (/v1/hocuspocus), for the gateway's tests."""

import asyncio
from dataclasses import dataclass, field
from typing import Any

import websockets
from pycrdt import Decoder, Doc, Text, write_var_uint

from gateway.wire import hocuspocus as hp
from tests.gateway.harness import Running


def string(text: str) -> bytes:
    data = text.encode()
    return write_var_uint(len(data)) + data


@dataclass
class Received:
    address: str | None  # None for a ping
    type: int
    body: bytes  # after the type


@dataclass
class HpClient:
    """A minimal client of the Hocuspocus framing."""

    ws: Any
    received: list[Received] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    close_code: int | None = None
    task: asyncio.Task[None] | None = None

    @classmethod
    async def connect(cls, gw: Running, query: str = "") -> "HpClient":
        ws = await websockets.connect(f"ws://127.0.0.1:{gw.port}/v1/hocuspocus{query}")
        client = cls(ws)
        client.task = asyncio.create_task(client._read())
        return client

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                assert isinstance(message, bytes)
                if message == bytes([hp.PING]):
                    self.received.append(Received(None, hp.PING, b""))
                else:
                    decoder = Decoder(message)
                    address = decoder.read_var_string()
                    rest = message[len(string(address)) :]
                    self.received.append(Received(address, rest[0], rest[1:]))
                self.changed.set()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.closed.set()
            self.changed.set()

    async def send(self, address: str, message: bytes) -> None:
        await self.ws.send(string(address) + message)

    async def auth(self, address: str, token: str, version: str | None = "4.8.0") -> None:
        """As a 4.x provider (its version after the token), or an older one (`version` None)."""
        message = bytes([hp.AUTH, hp.AUTH_TOKEN]) + string(token)
        await self.send(address, message + (string(version) if version else b""))

    async def next(self, address: str | None, type_: int, after: int = 0) -> Received:
        """The first message of `type_` to `address` at or after index `after`."""
        async with asyncio.timeout(10):
            while True:
                for got in self.received[after:]:
                    if got.address == address and got.type == type_:
                        return got
                if self.closed.is_set():
                    raise AssertionError(f"closed ({self.close_code}) before {type_}")
                self.changed.clear()
                await self.changed.wait()

    async def synced(self, address: str, token: str, version: str | None = "4.8.0") -> Doc[Any]:
        """Authenticate `address`, sync an empty doc, and return it with the letter's state."""
        mark = len(self.received)
        await self.auth(address, token, version)
        assert (await self.next(address, hp.AUTH, mark)).body[0] == hp.AUTH_OK
        await self.send(address, bytes([0, 0, 1, 0]))  # sync step 1, empty state vector
        step2 = await self.next(address, hp.SYNC, mark)
        while step2.body[0] != 1:
            step2 = await self.next(address, hp.SYNC, self.received.index(step2) + 1)
        doc: Doc[Any] = Doc()
        doc.apply_update(Decoder(step2.body[1:]).read_message() or b"")
        return doc

    async def close(self) -> None:
        await self.ws.close()
        await self.closed.wait()


def edit(doc: Doc[Any], value: str) -> bytes:
    produced: list[bytes] = []
    sub = doc.observe(lambda event: produced.append(event.update))
    text = doc.get("text", type=Text)
    text.insert(len(text), value)
    doc.unobserve(sub)
    return produced[0]
