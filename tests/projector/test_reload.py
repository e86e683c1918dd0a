"""A letter whose keys expired is reloaded before new events are folded into it."""

import contextlib
import json
import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis
from pycrdt import Doc, XmlElement, XmlFragment, XmlText

from eventlog import Log
from schemas import CommentDeleted, Topic, new_event
from schemas.settings import Settings
from tests.projector.support import (
    FIRM,
    OPTIONS,
    Editor,
    append,
    caught_up,
    comment,
    created,
    doc_text,
    projector,
    redis_bytes,
)
from tests.support import own_postgres


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
    assert json.loads(redis_bytes(await client.get("comments:E1")))[0]["thread_id"] == "t"
    assert (await client.hgetall("letter:E1:meta"))[b"title"] == b"T E1"


async def test_expired_letter_starts_from_its_latest_version(
    log: Log, settings: Settings, client: aioredis.Redis, pg_database: str
) -> None:
    settings = settings.model_copy(update={"database_url": pg_database})
    ed = Editor("V1")
    await append(log, settings, [created("V1"), ed.event(ed.paragraph("one"))])
    async with projector(settings, log):
        await caught_up(log, settings, client)
        topic = settings.topic(Topic.LETTERS)
        partition = log.partition_for(topic, b"V1")
        end = (await log.end_offsets(topic))[partition]
        await _save_version(pg_database, "V1", _marked_version(ed), topic, partition, end)
        await _expire(client, "V1")
        await append(log, settings, [ed.event(ed.paragraph("two"))])
        await caught_up(log, settings, client)
    text = doc_text(await client.get("ydoc:V1"))
    assert text == (
        "<paragraph>from-version</paragraph><paragraph>one</paragraph><paragraph>two</paragraph>"
    )


async def test_a_version_whose_state_does_not_decode_is_passed_over_for_the_log(
    log: Log, settings: Settings, client: aioredis.Redis, pg_database: str
) -> None:
    """A corrupt `ydoc_state` (a tampered or damaged row) crashed the fold, and with it the
    partition's projection at every restart; the log alone gives the letter."""
    settings = settings.model_copy(update={"database_url": pg_database})
    ed = Editor("V2")
    await append(log, settings, [created("V2"), ed.event(ed.paragraph("one"))])
    async with projector(settings, log) as running:
        await caught_up(log, settings, client)
        topic = settings.topic(Topic.LETTERS)
        partition = log.partition_for(topic, b"V2")
        end = (await log.end_offsets(topic))[partition]
        await _save_version(pg_database, "V2", b"\x01garbage", topic, partition, end)
        await _expire(client, "V2")
        await append(log, settings, [ed.event(ed.paragraph("two"))])
        await caught_up(log, settings, client)
        assert not running.done()
    text = doc_text(await client.get("ydoc:V2"))
    assert text == "<paragraph>one</paragraph><paragraph>two</paragraph>"


def _marked_version(ed: Editor) -> bytes:
    """A version of the editor's document that holds a marker the log does not: a reload whose
    result has it used the version."""
    version: Doc[XmlFragment] = Doc()
    version.apply_update(ed.doc.get_update())
    marker = version.get("default", type=XmlFragment)
    marker.children.insert(0, XmlElement("paragraph", {}, [XmlText("from-version")]))
    return version.get_update()


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


async def test_a_comment_deleted_after_expiry_takes_its_notification_with_it(
    log: Log, settings: Settings, client: aioredis.Redis
) -> None:
    # bob's hash outlives N1's keys: his mention on N2 keeps it. The deletion reloads N1, and
    # bob is no longer named in N1's state after it.
    await append(log, settings, [created("N1"), created("N2")])
    await append(
        log,
        settings,
        [
            comment("N1", "t1", "look", mentions=["bob"]),
            comment("N1", "t3", "and here", mentions=["carol"]),
            comment("N2", "t2", "see", mentions=["bob"]),
        ],
    )
    async with projector(settings, log):
        await caught_up(log, settings, client)
        assert sorted(await client.hkeys("notifications:firm-1:bob")) == [b"N1:t1-0", b"N2:t2-0"]
        await _expire(client, "N1")
        deleted = CommentDeleted(thread_id="t1", comment_id="t1-0")
        await append(log, settings, [new_event("N1", deleted, firm=FIRM, user="u1")])
        await caught_up(log, settings, client)
    assert await client.hkeys("notifications:firm-1:bob") == [b"N2:t2-0"]
    assert await client.hkeys("notifications:firm-1:carol") == [b"N1:t3-0"]  # still mentioned


async def test_a_hung_postgres_delays_a_reload_by_its_timeout_only(
    service_tmp: Path, log: Log, settings: Settings, client: aioredis.Redis
) -> None:
    pg = await own_postgres(service_tmp / "pg")
    dsn = pg.dsn()
    settings = settings.model_copy(update={"database_url": dsn})
    options = OPTIONS.model_copy(update={"versions_timeout_s": 0.5})
    ed = Editor("H1")
    await append(log, settings, [created("H1"), ed.event(ed.paragraph("one"))])
    try:
        async with projector(settings, log, options):
            await caught_up(log, settings, client)
            topic = settings.topic(Topic.LETTERS)
            partition = log.partition_for(topic, b"H1")
            end = (await log.end_offsets(topic))[partition]
            await _save_version(dsn, "H1", _marked_version(ed), topic, partition, end)
            await _expire(client, "H1")
            await append(log, settings, [ed.event(ed.paragraph("two"))])
            await caught_up(log, settings, client)  # from the version: the pool has a connection
            assert doc_text(await client.get("ydoc:H1")).startswith("<paragraph>from-version")

            assert pg.pid is not None
            with _hung(pg.pid):
                await _expire(client, "H1")
                await append(log, settings, [ed.event(ed.paragraph("three")), created("H2")])
                await caught_up(log, settings, client, timeout=5)
                assert await client.exists("letter:H2:meta")
                assert doc_text(await client.get("ydoc:H1")) == (
                    "<paragraph>one</paragraph><paragraph>two</paragraph>"
                    "<paragraph>three</paragraph>"
                )  # from the log alone

            await _expire(client, "H1")
            await append(log, settings, [ed.event(ed.paragraph("four"))])
            await caught_up(log, settings, client)
            assert doc_text(await client.get("ydoc:H1")) == (
                "<paragraph>from-version</paragraph><paragraph>one</paragraph>"
                "<paragraph>two</paragraph><paragraph>three</paragraph><paragraph>four</paragraph>"
            )  # the version again: PostgreSQL is used once it answers
    finally:
        await pg.stop()


@contextlib.contextmanager
def _hung(postmaster: int) -> Iterator[None]:
    """PostgreSQL stops answering, as on a host that hangs: the postmaster first (it forks no
    backend after that), then its backends (each in a session of its own: not by group)."""
    os.kill(postmaster, signal.SIGSTOP)
    stopped = [postmaster]
    try:
        for pid in _children(postmaster):
            os.kill(pid, signal.SIGSTOP)
            stopped.append(pid)
        yield
    finally:
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def _children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            # Field 4 of /proc/<pid>/stat, after the parenthesised command name.
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent:
            found.append(int(entry.name))
    return found
