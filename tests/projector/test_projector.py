"""The projector against real Redis and the embedded log, in process."""

import json

import redis.asyncio as aioredis

from eventlog import Log
from schemas.settings import Settings
from tests.projector.support import (
    Editor,
    append,
    caught_up,
    comment,
    created,
    doc_text,
    dump,
    joined,
    left,
    projector,
    redis_bytes,
    reply,
)


async def test_folds_a_letter_into_its_keys(
    log: Log, settings: Settings, client: aioredis.Redis
) -> None:
    ed = Editor("L1")
    events = [created("L1"), joined("L1", "c1"), ed.event(ed.paragraph("hello"))]
    events += [
        ed.event(ed.type(0, " world")),
        comment("L1", "t1", "nice"),
        reply("L1", "t1", "r1", "yes"),
    ]
    await append(log, settings, events)
    async with projector(settings, log):
        await caught_up(log, settings, client)
    assert doc_text(await client.get("ydoc:L1")) == "<paragraph>hello world</paragraph>"
    assert int(redis_bytes(await client.get("ydoc:L1:offset"))) == 6
    meta = await client.hgetall("letter:L1:meta")
    assert meta[b"title"] == b"T L1" and meta[b"firm_id"] == b"firm-1"
    assert await client.smembers("letter:L1:connections") == {b"c1"}
    conn = await client.hgetall("connection:c1")
    assert conn[b"userId"] == b"u1" and conn[b"gateway"] == b"gw-1"
    presence = json.loads((await client.hgetall("presence:L1"))[b"u1"])
    assert presence["name"] == "U1" and presence["status"] == "typing"
    threads = json.loads(redis_bytes(await client.get("comments:L1")))
    assert [c["body"] for c in threads[0]["comments"]] == ["nice", "yes"]
    recent = await client.hgetall("recent:L1")
    assert json.loads(recent[b"0"])["userId"] == "u1"
    assert 0 < await client.pttl("ydoc:L1") <= 24 * 3600 * 1000


async def test_user_disappears_when_last_connection_leaves(
    log: Log, settings: Settings, client: aioredis.Redis
) -> None:
    events = [created("L2"), joined("L2", "a"), joined("L2", "b"), left("L2", "a")]
    await append(log, settings, events)
    async with projector(settings, log):
        await caught_up(log, settings, client)
        assert await client.hexists("presence:L2", "u1")
        assert not await client.exists("connection:a")
        await append(log, settings, [left("L2", "b")])
        await caught_up(log, settings, client)
    assert not await client.exists("presence:L2")
    assert not await client.exists("letter:L2:connections")
    assert not await client.exists("connection:b")


async def _history(log: Log, settings: Settings, letters: int = 6) -> None:
    events = []
    for i in range(letters):
        lid = f"H{i}"
        ed = Editor(lid, user=f"u{i % 2}")
        events += [created(lid), joined(lid, f"c{i}", user=f"u{i % 2}")]
        events += [ed.event(ed.paragraph(f"p{i}")), comment(lid, f"t{i}", "first")]
        events += [ed.event(ed.type(0, f" more {n}")) for n in range(5)]
    await append(log, settings, events)


async def test_replaying_a_stretch_changes_nothing(
    log: Log, settings: Settings, client: aioredis.Redis
) -> None:
    await _history(log, settings)
    async with projector(settings, log):
        await caught_up(log, settings, client)
    before = await dump(client)
    async for key in client.scan_iter("projector:pos:*"):  # rewind every partition
        await client.set(key, int(redis_bytes(await client.get(key))) // 2)
    async with projector(settings, log):
        await caught_up(log, settings, client)
    assert await dump(client) == before


async def test_flushall_is_healed_by_a_replay(
    log: Log, settings: Settings, client: aioredis.Redis
) -> None:
    await _history(log, settings)
    async with projector(settings, log):
        await caught_up(log, settings, client)
        before = await dump(client)
        await client.flushdb()  # FLUSHALL on the test's own database
        await caught_up(log, settings, client)
        assert await dump(client) == before
        assert len([k for k in before if k.startswith("ydoc:")]) == 12
