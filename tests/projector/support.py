"""Helpers for the projector tests: events to append, a projector to run, Redis to compare."""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence

import redis.asyncio as aioredis
from pycrdt import Doc, Encoder, XmlElement, XmlFragment, XmlText

from eventlog import Entry, Log
from projector.consumer import Projector
from projector.entry import run
from projector.fold import Item
from projector.settings import ProjectorSettings
from schemas import (
    CommentCreated,
    CommentReplied,
    Event,
    LetterCreated,
    SessionJoined,
    SessionLeft,
    Topic,
    UserRef,
    encode_event,
    new_event,
)
from schemas.settings import Settings
from tests.support import eventually

FIRM = "firm-1"
OPTIONS = ProjectorSettings(metrics_port=None, check_interval_s=0.1, sweep_interval_s=0.2)


class Editor:
    """A Yjs client editing one letter's XmlFragment; each call returns its update."""

    def __init__(self, letter_id: str, user: str = "u1") -> None:
        self.letter_id, self.user = letter_id, user
        self.doc: Doc[XmlFragment] = Doc()
        self.root = self.doc.get("default", type=XmlFragment)
        self._updates: list[bytes] = []
        self.doc.observe(lambda e: self._updates.append(e.update))

    def _take(self) -> bytes:
        out = self._updates[-1]
        self._updates.clear()
        return out

    def paragraph(self, text: str) -> bytes:
        self.root.children.append(XmlElement("paragraph", {}, [XmlText(text)]))
        return self._take()

    def type(self, index: int, text: str) -> bytes:
        element = self.root.children[index]
        assert isinstance(element, XmlElement)
        node = element.children[0]
        assert isinstance(node, XmlText)
        node.insert(len(str(node)), text)
        return self._take()

    def event(self, update: bytes, conn: str = "c1", gw: str = "gw-1") -> Event:
        return new_event(
            self.letter_id, update, firm=FIRM, user=self.user, conn=conn, gw=gw, type="doc.update"
        )


def created(letter_id: str, user: str = "u1", firm: str = FIRM) -> Event:
    payload = LetterCreated(
        letter_id=letter_id, firm_id=firm, title=f"T {letter_id}", created_by=user
    )
    return new_event(letter_id, payload, firm=firm, user=user)


def joined(letter_id: str, conn: str, user: str = "u1", gw: str = "gw-1") -> Event:
    ref = UserRef(id=user, name=user.upper(), color="#123456")
    payload = SessionJoined(conn_id=conn, user=ref, role="editor")
    return new_event(letter_id, payload, firm=FIRM, user=user, conn=conn, gw=gw)


def left(letter_id: str, conn: str, user: str = "u1", gw: str = "gw-1") -> Event:
    ref = UserRef(id=user, name=user.upper(), color="#123456")
    payload = SessionLeft(conn_id=conn, user=ref, role="editor")
    return new_event(letter_id, payload, firm=FIRM, user=user, conn=conn, gw=gw)


def comment(
    letter_id: str,
    thread: str,
    body: str,
    user: str = "u1",
    mentions: Sequence[str] = (),
    firm: str = FIRM,
) -> Event:
    from schemas import Anchor

    anchor = Anchor(start="AAA=", end="AAE=", quote="hello")
    payload = CommentCreated(
        thread_id=thread,
        comment_id=f"{thread}-0",
        anchor=anchor,
        body=body,
        mentions=list(mentions),
    )
    return new_event(letter_id, payload, firm=firm, user=user)


def reply(letter_id: str, thread: str, cid: str, body: str, user: str = "u2") -> Event:
    payload = CommentReplied(thread_id=thread, comment_id=cid, body=body)
    return new_event(letter_id, payload, firm=FIRM, user=user)


def awareness(
    letter_id: str,
    client: int,
    clock: int,
    state: dict[str, object] | None,
    conn: str,
    user: str = "u1",
) -> Event:
    enc = Encoder()
    enc.write_var_uint(1)
    enc.write_var_uint(client)
    enc.write_var_uint(clock)
    enc.write_var_string(json.dumps(state))
    return new_event(
        letter_id,
        enc.to_bytes(),
        firm=FIRM,
        user=user,
        conn=conn,
        gw="gw-1",
        type="awareness.update",
    )


async def append(log: Log, settings: Settings, events: Sequence[Event]) -> None:
    """Append in order, one record per call (the gateway's shape)."""
    for event in events:
        key, value, headers = encode_event(event)
        await log.append(settings.topic(event.topic), key, [Entry(value, headers)])


async def append_raw(
    log: Log, topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]
) -> None:
    await log.append(topic, key, [Entry(value, headers)])


@contextlib.asynccontextmanager
async def projector(
    settings: Settings, log: Log, options: ProjectorSettings = OPTIONS
) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(run(settings, options, log))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def caught_up(
    log: Log, settings: Settings, client: aioredis.Redis, timeout: float = 20
) -> None:
    """Until every partition's stored position equals the log's end offset."""

    async def done() -> bool:
        for kind in Topic:
            topic = settings.topic(kind)
            ends = await log.end_offsets(topic)
            keys = [f"projector:pos:{topic}:{p}" for p in sorted(ends)]
            stored = await client.mget(keys)
            for (_, end), value in zip(sorted(ends.items()), stored, strict=True):
                if end and (value is None or int(value) != end):
                    return False
        return True

    await eventually(done, timeout)


def redis_bytes(value: bytes | str | None) -> bytes:
    """A value read from Redis that must be there; the tests' clients do not decode responses."""
    assert isinstance(value, bytes), value
    return value


def doc_text(state: bytes | str | None) -> str:
    doc: Doc[XmlFragment] = Doc()
    doc.apply_update(redis_bytes(state))
    return str(doc.get("default", type=XmlFragment))


async def dump(client: aioredis.Redis) -> dict[str, object]:
    """Every key (except gateway-owned ones) with its value; `ydoc:*` as document text. A fold
    of the same log gives the same dump however it was batched, `recent:*` included."""
    out: dict[str, object] = {}
    async for raw in client.scan_iter(count=1000):
        key = redis_bytes(raw).decode()
        if key.startswith("gateway:"):
            continue
        kind = redis_bytes(await client.type(key)).decode()
        if kind == "string":
            value = await client.get(key)
            if key.startswith("ydoc:") and not key.endswith(":offset"):
                out[key] = doc_text(value)
            elif key.startswith("projector:letter:"):
                out[key] = json.loads(redis_bytes(value))  # its keys in any order
            else:
                out[key] = value
        elif kind == "hash":
            out[key] = await client.hgetall(key)
        elif kind == "set":
            out[key] = await client.smembers(key)
    return out


class Instance:
    """A projector run in this process, as `steno-collab projector` runs it."""

    def __init__(self, settings: Settings, log: Log, options: ProjectorSettings) -> None:
        loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[Projector] = loop.create_future()
        self.task = asyncio.create_task(run(settings, options, log, self.ready))

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


def items(events: list[Event], start: int = 0, topic: Topic = Topic.LETTERS) -> list[Item]:
    return [Item(topic, start + i, e) for i, e in enumerate(events)]
