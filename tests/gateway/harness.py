"""A gateway on a real port with the real embedded log, and a Python y-websocket client."""

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import redis.asyncio as aioredis
import websockets
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from pycrdt import (
    Awareness,
    Decoder,
    Doc,
    Text,
    create_awareness_message,
    create_sync_message,
    create_update_message,
    merge_updates,
)

from eventlog.factory import open_log
from eventlog.records import Log, Record
from gateway.api.app import create_app
from gateway.api.server import GatewayServer, server_for
from gateway.auth import mint_token
from gateway.preparse import STATE_LIMITS, DocShape
from schemas.bounded_pg import bounded_pool
from schemas.events import Topic
from schemas.settings import Settings
from schemas.stores import CONNECT_TIMEOUT_S
from snapshotter.migrate import migrate
from tests.support import bound_socket, eventually


def metric_samples(text: str) -> dict[str, float]:
    """Prometheus text as `name{label="value",...}` -> value, labels sorted by name."""
    return {
        sample.name
        + ("{" + ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items())) + "}"
           if sample.labels else ""): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }  # fmt: skip


@dataclass
class Running:
    app: FastAPI
    settings: Settings
    log: Log
    server: GatewayServer
    port: int

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws_url(self, letter_id: str, token: str, **params: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in {"token": token, **params}.items())
        return f"ws://127.0.0.1:{self.port}/v1/letter-{letter_id}?{query}"

    def token(self, user: str = "u1", firm: str = "firm-a", role: str = "editor", **kw: Any) -> str:
        return mint_token(self.settings, user, firm, role, **kw)

    async def create_letter(self, content: str = "", firm: str = "firm-a", title: str = "T") -> str:
        token = self.token(firm=firm)
        # A letter of ~1 MB takes seconds to log on Tansu under load: past httpx's default 5 s.
        async with httpx.AsyncClient(base_url=self.http, timeout=30) as http:
            r = await http.post(
                "/v1/letters",
                json={"firm_id": firm, "title": title, "content": content},
                headers={"Authorization": f"Bearer {token}"},
            )
        assert r.status_code == 201, r.text
        return str(r.json()["letter_id"])

    async def client(self, letter_id: str, **kw: Any) -> "YClient":
        params = {k: str(kw.pop(k)) for k in ("events",) if k in kw}
        return await YClient.connect(self.ws_url(letter_id, self.token(**kw), **params))

    async def records(self, kind: Topic, letter_id: str) -> list[Record]:
        topic = self.settings.topic(kind)
        partition = self.log.partition_for(topic, letter_id.encode())
        found, offset = [], 0
        while batch := await self.log.read(topic, partition, offset):
            found += [r for r in batch if r.key == letter_id.encode()]
            offset = batch[-1].offset + 1
        return found

    async def replayed_text(self, letter_id: str) -> str:
        """The letter's Y.Text `text` as its doc.update records rebuild it, one by one in
        order, each checked against those before it: a record past a hole in its client's
        clocks raises (`clock_gap`: the log must never get one)."""
        doc: Doc[Any] = Doc()
        shape = DocShape()
        for record in await self.records(Topic.LETTERS, letter_id):
            if dict(record.headers)["type"] == b"doc.update":
                shape.accept(record.value, STATE_LIMITS)
                doc.apply_update(record.value)
        return str(doc.get("text", type=Text))

    async def metrics(self) -> dict[str, float]:
        """The gateway's /metrics samples: `name{label="value",...}` -> value."""
        async with httpx.AsyncClient(base_url=self.http) as http:
            return metric_samples((await http.get("/metrics")).text)

    async def two_editors(self) -> tuple[str, "YClient", "YClient"]:
        """A new letter with Alice and Bob editing it, both synced."""
        letter = await self.create_letter()
        alice = await self.client(letter, user="alice", name="Alice")
        bob = await self.client(letter, user="bob", name="Bob")
        await alice.synced.wait()
        await bob.synced.wait()
        return letter, alice, bob

    async def logged_text(self, letter_id: str) -> str:
        """The letter's "text" as its logged doc.update records alone rebuild it."""
        records = await self.records(Topic.LETTERS, letter_id)
        updates = [r.value for r in records if dict(r.headers)["type"] == b"doc.update"]
        doc: Doc[Any] = Doc()
        if updates:
            doc.apply_update(merge_updates(*updates))
        return str(doc.get("text", type=Text))


@asynccontextmanager
async def running_gateway(
    settings: Settings, log: Log | None = None, redis: Any = None, pg: Any = None
) -> AsyncIterator[Running]:
    own_log = log is None
    log = log or open_log(settings)
    if own_log:
        await log.start()
    try:
        async with serving(create_app(settings, log, redis, pg), settings, log) as running:
            yield running
    finally:
        if own_log:
            await log.close()


@asynccontextmanager
async def serving(app: FastAPI, settings: Settings, log: Log) -> AsyncIterator[Running]:
    """`app` served on a free port of 127.0.0.1 until the block ends."""
    sock = bound_socket()
    port = int(sock.getsockname()[1])
    server = server_for(app, settings, "127.0.0.1", port)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await eventually(lambda: server.started or task.done(), timeout=20)
        assert server.started, "gateway did not start"
        yield Running(app, settings, log, server, port)
    finally:
        server.should_exit = True
        await task
        sock.close()  # the server closed it, unless it never started


@asynccontextmanager
async def running_with_stores(settings: Settings) -> AsyncIterator[Running]:
    """A gateway with clients of the real Redis and PostgreSQL its settings name (the schema
    migrated first), as `steno-collab gateway` connects them."""
    assert settings.redis_url is not None and settings.database_url is not None
    await migrate(settings.database_url)
    redis = aioredis.Redis.from_url(settings.redis_url)
    pg = await bounded_pool(settings.database_url, CONNECT_TIMEOUT_S, max_size=2)
    try:
        async with running_gateway(settings, redis=redis, pg=pg) as running:
            yield running
    finally:
        await redis.aclose()
        await pg.close()


def types_of(records: list[Record]) -> list[str]:
    return [dict(r.headers)["type"].decode() for r in records]


@dataclass
class YClient:
    """A minimal y-websocket client: sync, updates, awareness, auth and app messages."""

    ws: Any
    doc: Doc[Any] = field(default_factory=Doc)
    synced: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    received: list[bytes] = field(default_factory=list)
    updates: list[bytes] = field(default_factory=list)
    awareness: list[list[tuple[int, int, Any]]] = field(default_factory=list)
    denied: list[str] = field(default_factory=list)
    app: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None
    task: asyncio.Task[None] | None = None

    @classmethod
    async def connect(cls, url: str, *, doc: Doc[Any] | None = None, **kw: Any) -> "YClient":
        """Connect (again, when `doc` is the document of an earlier connection)."""
        ws = await websockets.connect(url, max_size=None, **kw)
        client = cls(ws) if doc is None else cls(ws, doc=doc)
        client.task = asyncio.create_task(client._read())
        await ws.send(create_sync_message(client.doc))
        return client

    @property
    def text(self) -> Text:
        text: Text = self.doc.get("text", type=Text)
        return text

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                self.received.append(message)
                await self._handle(message)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.closed.set()

    async def _handle(self, message: bytes) -> None:
        decoder = Decoder(message)
        kind = decoder.read_var_uint()
        if kind == 0:
            sub = decoder.read_var_uint()
            body = decoder.read_message() or b""
            if sub == 0:
                await self.ws.send(bytes([0, 1]) + varbytes(self.doc.get_update(body)))
            else:
                self.doc.apply_update(body)
                self.updates.append(body)
                if sub == 1:
                    self.synced.set()
        elif kind == 1:
            self.awareness.append(_awareness_entries(decoder.read_message() or b""))
        elif kind == 2:
            decoder.read_var_uint()
            self.denied.append(decoder.read_var_string())
        elif kind == 100:
            self.app.append(json.loads(decoder.read_var_string()))

    async def edit(self, change: Callable[[Doc[Any]], None]) -> list[bytes]:
        """Apply `change` to the local doc and send each update it produced."""
        produced: list[bytes] = []
        sub = self.doc.observe(lambda event: produced.append(event.update))
        change(self.doc)
        self.doc.unobserve(sub)
        for update in produced:
            await self.ws.send(create_update_message(update))
        return produced

    async def insert(self, text: str, index: int | None = None) -> list[bytes]:
        def change(doc: Doc[Any]) -> None:
            t = doc.get("text", type=Text)
            t.insert(len(t) if index is None else index, text)

        return await self.edit(change)

    async def set_awareness(self, awareness: Awareness, state: dict[str, Any]) -> None:
        awareness.set_local_state(state)
        update = awareness.encode_awareness_update([awareness.client_id])
        await self.ws.send(create_awareness_message(update))

    async def close(self) -> None:
        await self.ws.close()
        await self.closed.wait()


def varbytes(data: bytes) -> bytes:
    from pycrdt import write_var_uint

    return write_var_uint(len(data)) + data


def _awareness_entries(update: bytes) -> list[tuple[int, int, Any]]:
    decoder = Decoder(update)
    entries = []
    for _ in range(decoder.read_var_uint()):
        client, clock = decoder.read_var_uint(), decoder.read_var_uint()
        entries.append((client, clock, json.loads(decoder.read_var_string())))
    return entries


def type_relayed(doc: Doc[Any], text: str, *others: Doc[Any]) -> None:
    """Type `text` at the end of `doc`; the dead gateway relayed it to `others`, never logged."""
    produced: list[bytes] = []
    sub = doc.observe(lambda event: produced.append(event.update))
    typed = doc.get("text", type=Text)
    typed.insert(len(typed), text)
    doc.unobserve(sub)
    for other in others:
        other.apply_update(produced[0])
