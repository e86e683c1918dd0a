"""A letter whose keys expired is reloaded before new events are folded into it."""

import json
import logging

import asyncpg
import pytest
import redis.asyncio as aioredis
from pycrdt import Doc, XmlElement, XmlFragment, XmlText

from eventlog import Log
from schemas.settings import Settings
from tests.projector.support import Editor, append, caught_up, comment, created, doc_text, projector


async def _expire(client: aioredis.Redis, letter_id: str) -> None:
    for key in (f"ydoc:{letter_id}", f"projector:letter:{letter_id}", f"comments:{letter_id}"):
        await client.pexpire(key, 1)
    for key in (f"ydoc:{letter_id}", f"projector:letter:{letter_id}"):
        while await client.exists(key):  # expiry is lazy on access: this access completes it
            pass


async def test_expired_letter_is_reloaded_from_the_log(
    log: Log, settings: Settings, client: aioredis.Redis
) -> None:
    ed = Editor("E1")
    await append(
        log, settings, [created("E1"), ed.event(ed.paragraph("old")), comment("E1", "t", "c")]
    )
    await append(log, settings, [created("E2")])  # another letter of the log, untouched
    async with projector(settings, log):
        await caught_up(log, settings, client)
        await _expire(client, "E1")
        await append(log, settings, [ed.event(ed.paragraph("new"))])
        await caught_up(log, settings, client)
    text = doc_text(await client.get("ydoc:E1"))
    assert text == "<paragraph>old</paragraph><paragraph>new</paragraph>"
    assert json.loads(await client.get("comments:E1"))[0]["thread_id"] == "t"
    assert (await client.hgetall("letter:E1:meta"))[b"title"] == b"T E1"


async def test_expired_letter_starts_from_its_latest_version(
    log: Log, settings: Settings, client: aioredis.Redis, pg_database: str
) -> None:
    settings = settings.model_copy(update={"database_url": pg_database})
    ed = Editor("V1")
    await append(log, settings, [created("V1"), ed.event(ed.paragraph("one"))])
    async with projector(settings, log):
        await caught_up(log, settings, client)
        # A version whose state holds a marker the log does not: proves the reload used it.
        version = Doc()
        version.apply_update(ed.doc.get_update())
        marker = version.get("default", type=XmlFragment)
        marker.children.insert(0, XmlElement("paragraph", {}, [XmlText("from-version")]))
        topic = settings.topic(__import__("schemas").Topic.LETTERS)
        partition = log.partition_for(topic, b"V1")
        end = (await log.end_offsets(topic))[partition]
        await _save_version(pg_database, "V1", version.get_update(), topic, partition, end)
        await _expire(client, "V1")
        await append(log, settings, [ed.event(ed.paragraph("two"))])
        await caught_up(log, settings, client)
    text = doc_text(await client.get("ydoc:V1"))
    assert text == (
        "<paragraph>from-version</paragraph><paragraph>one</paragraph><paragraph>two</paragraph>"
    )


async def _save_version(
    dsn: str, letter_id: str, state: bytes, topic: str, partition: int, offset: int
) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            """CREATE TABLE letter_version (letter_id text, version_number int, content text,
            document jsonb, ydoc_state bytea, log_topic text, log_partition int, log_offset bigint,
            change_data jsonb, created_at timestamptz DEFAULT now(),
            PRIMARY KEY (letter_id, version_number))"""
        )
        await conn.execute(
            "INSERT INTO letter_version (letter_id, version_number, ydoc_state, log_topic,"
            " log_partition, log_offset) VALUES ($1, 1, $2, $3, $4, $5)",
            letter_id,
            state,
            topic,
            partition,
            offset,
        )
    finally:
        await conn.close()


async def test_a_new_letter_is_not_reloaded_after_a_restart(
    log: Log, settings: Settings, client: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    old, new = Editor("R1"), Editor("R2")
    await append(log, settings, [created("R1"), old.event(old.paragraph("a"))])
    async with projector(settings, log):
        await caught_up(log, settings, client)
    # Resumed from stored positions: R2 (no letter.created) is new, R1 (expired) is known.
    await _expire(client, "R1")
    await append(log, settings, [new.event(new.paragraph("b")), old.event(old.paragraph("c"))])
    with caplog.at_level(logging.INFO, logger="projector"):
        async with projector(settings, log):
            await caught_up(log, settings, client)
    reloads = [r.getMessage() for r in caplog.records if "reloaded" in r.getMessage()]
    assert len(reloads) == 1 and reloads[0].startswith("reloaded 1 expired letter")
    assert (
        doc_text(await client.get("ydoc:R1")) == "<paragraph>a</paragraph><paragraph>c</paragraph>"
    )
    assert doc_text(await client.get("ydoc:R2")) == "<paragraph>b</paragraph>"
