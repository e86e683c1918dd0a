"""Records the projector cannot fold are counted, logged and skipped; the rest goes on."""

import json
import logging

import pytest
import redis.asyncio as aioredis

from eventlog import Log
from schemas import Topic, encode_event
from schemas.settings import Settings
from tests.projector.support import (
    OPTIONS,
    Editor,
    append,
    append_raw,
    awareness,
    caught_up,
    created,
    doc_text,
    joined,
    projector,
)


async def test_poison_records_are_skipped(
    log: Log, settings: Settings, client: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    letters, presence = settings.topic(Topic.LETTERS), settings.topic(Topic.PRESENCE)
    ed = Editor("P1")
    await append(log, settings, [created("P1"), ed.event(ed.paragraph("before"))])
    await append_raw(log, letters, b"P1", b"x", [("type", b"no.such.type")])  # undecodable
    _, _, headers = encode_event(ed.event(b"\x01\x02"))
    await append_raw(log, letters, b"P1", b"\xff\xfe garbage", headers)  # pycrdt refuses it
    _, _, headers = encode_event(awareness("P1", 1, 1, {}, conn="c1"))
    await append_raw(log, presence, b"P1", b"\x05\x01", headers)  # truncated awareness
    await append(log, settings, [ed.event(ed.paragraph("after"))])
    with caplog.at_level(logging.WARNING, logger="projector"):
        async with projector(settings, log):
            await caught_up(log, settings, client)
    assert doc_text(await client.get("ydoc:P1")) == (
        "<paragraph>before</paragraph><paragraph>after</paragraph>"
    )
    partition = log.partition_for(letters, b"P1")
    poison = [r.getMessage() for r in caplog.records if "poison" in r.getMessage()]
    assert f"{letters}/{partition}@2" in poison[0] and "envelope" in poison[0]
    assert any(f"{letters}/{partition}@3" in m and "pycrdt" in m for m in poison)
    assert any(f"{presence}/{partition}@0" in m for m in poison)


async def test_dead_gateway_connections_are_dropped(
    log: Log, settings: Settings, client: aioredis.Redis
) -> None:
    await client.set("gateway:gw-live:alive", "1", ex=30)
    events = [created("G1"), joined("G1", "live", "u1", gw="gw-live")]
    events += [joined("G1", "dead", "u2", gw="gw-dead")]
    await append(log, settings, events)
    await append(
        log, settings, [awareness("G1", 7, 1, {"user": {"id": "u2"}}, conn="dead", user="u2")]
    )
    options = OPTIONS.model_copy(update={"stale_after_s": 0.3})
    async with projector(settings, log, options):
        await caught_up(log, settings, client)
        assert await client.smembers("letter:G1:connections") == {b"live", b"dead"}
        from tests.support import eventually

        async def dropped() -> bool:
            return await client.smembers("letter:G1:connections") == {b"live"}

        await eventually(dropped, 10)
    assert not await client.exists("connection:dead")
    presence = await client.hgetall("presence:G1")
    assert set(presence) == {b"u1"} and json.loads(presence[b"u1"])["name"] == "U1"
