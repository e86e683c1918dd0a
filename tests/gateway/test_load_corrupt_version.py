"""A saved state that does not decode (a corrupt `letter_version.ydoc_state`, a corrupt Redis
snapshot) is a projection gone wrong, not a lost letter: the load skips it with a warning that
names the letter and the version, starts from the version before it, else from the letter's
first record, and loads what the log alone gives. Over the gateway the letter opens as usual;
a load that fails for a reason other than the log is not reported as the log's."""

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from eventlog import Log
from gateway.content import plain_text
from gateway.live import loader
from gateway.live.loader import load, writes
from schemas.events import Topic
from schemas.keys import ydoc_key, ydoc_offset_key
from schemas.settings import Settings
from snapshotter.migrate import migrate
from tests.gateway.harness import Running
from tests.support import eventually, started_log
from tests.tools.scripted import LETTER
from tests.tools.snapshots import snapshotted

GARBAGE = b"\xde\xad\xbe\xef\x01\x02\x03\x04"  # pycrdt: "Cannot decode update"


@pytest_asyncio.fixture(loop_scope="session")
async def settings(tmp_path: Path, pg_database: str, redis_db: str) -> Settings:
    await migrate(pg_database)
    return Settings(data_dir=tmp_path / "steno", partitions=1, database_url=pg_database,
                    redis_url=redis_db, autosave_updates=15, idle_unload_s=0.2)  # fmt: skip


@pytest_asyncio.fixture(loop_scope="session")
async def log(settings: Settings) -> AsyncIterator[Log]:
    async with started_log(settings) as the_log:
        yield the_log


@pytest_asyncio.fixture(loop_scope="session")
async def pg(settings: Settings, log: Log) -> AsyncIterator[asyncpg.Pool]:
    """The scripted letter folded by the snapshotter: versions 1 and 2."""
    async with snapshotted(settings, log) as pool:
        assert await pool.fetchval("SELECT count(*) FROM letter_version") == 2
        yield pool


async def _corrupt(pg: Any, letter_id: str, *numbers: int) -> None:
    await pg.execute(
        "UPDATE letter_version SET ydoc_state = $3 WHERE letter_id = $1"
        " AND version_number = ANY($2::int[])",
        letter_id, list(numbers), GARBAGE,
    )  # fmt: skip


def _skipped(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "does not decode" in r.getMessage()]


async def _as_from_the_log_alone(
    settings: Settings, log: Log, redis: Any, pg: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> list[str]:
    """The load through the projections equals the log-only one; the warnings it gave."""
    alone = await load(settings, log, LETTER, None, None)
    assert len(alone.state) > 100
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gateway.live.loader"):
        loaded = await load(settings, log, LETTER, redis, pg)
    assert (loaded.state, loaded.end, loaded.pending) == (alone.state, alone.end, alone.pending)
    wrote = [w async for w in writes(settings, log, LETTER, loaded, pg)]
    assert wrote == [w async for w in writes(settings, log, LETTER, alone)]
    return _skipped(caplog)


async def test_a_corrupt_latest_version_is_skipped_for_the_one_before(
    settings: Settings, log: Log, pg: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    await _corrupt(pg, LETTER, 2)
    [warning] = await _as_from_the_log_alone(settings, log, None, pg, caplog)
    assert LETTER in warning and "version 2" in warning


async def test_with_every_version_corrupt_the_log_is_read_from_the_letters_start(
    settings: Settings, log: Log, pg: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    await _corrupt(pg, LETTER, 1, 2)
    warnings = await _as_from_the_log_alone(settings, log, None, pg, caplog)
    assert ["version 2" in w for w in warnings] == [True, False]
    assert LETTER in warnings[1] and "version 1" in warnings[1]
    created = await pg.fetchval("SELECT log_offset FROM letters WHERE letter_id = $1", LETTER)
    loaded = await load(settings, log, LETTER, None, pg)
    assert loaded.origin == created is not None  # from the letters row, not the partition's start


async def test_a_corrupt_redis_snapshot_falls_back_to_postgresql(
    settings: Settings, log: Log, pg: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    assert settings.redis_url is not None
    redis = aioredis.Redis.from_url(settings.redis_url)
    try:
        await redis.mset({ydoc_key(LETTER): GARBAGE, ydoc_offset_key(LETTER): 1})
        [warning] = await _as_from_the_log_alone(settings, log, redis, pg, caplog)
        assert LETTER in warning and "Redis" in warning
        await _corrupt(pg, LETTER, 2)  # and then its latest version too
        assert len(await _as_from_the_log_alone(settings, log, redis, pg, caplog)) == 2
    finally:
        await redis.aclose()


async def _unloaded(stores: Running, letter: str) -> None:
    rooms = stores.app.state.gateway.rooms
    await eventually(lambda: rooms.get(letter) is None)


async def test_a_letter_whose_latest_version_is_corrupt_opens(
    stores: Running, stores_writer: asyncpg.Connection
) -> None:
    """No Redis snapshot (expired), the latest version corrupt: REST reads and a WebSocket
    client get the letter, not a 500 and a 4503 loop."""
    letter = await stores.create_letter("Dear Sir,\nPay.")
    await _unloaded(stores, letter)
    pg = stores_writer
    topic = stores.settings.topic(Topic.LETTERS)
    partition = stores.log.partition_for(topic, letter.encode())
    end = (await stores.log.end_offsets(topic))[partition]
    await pg.execute(
        "INSERT INTO letters (letter_id, firm_id, title, created_at, created_by, log_topic,"
        " log_partition, log_offset) VALUES ($1, 'firm-a', 'T', now(), 'u', $2, $3, 0)",
        letter, topic, partition,
    )  # fmt: skip
    await pg.execute(
        "INSERT INTO letter_version (letter_id, version_number, content, document, ydoc_state,"
        " log_topic, log_partition, log_offset, change_data, created_at)"
        " VALUES ($1, 1, '', '{}', $2, $3, $4, $5, '{}', now())",
        letter, GARBAGE, topic, partition, end,
    )  # fmt: skip
    headers = {"Authorization": f"Bearer {stores.token()}"}
    async with httpx.AsyncClient(base_url=stores.http) as http:
        r = await http.get(f"/v1/letters/{letter}", headers=headers)
    assert r.status_code == 200 and r.json()["content"] == "Dear Sir,\nPay."
    client = await stores.client(letter)
    await eventually(lambda: client.synced.is_set() or client.closed.is_set())
    assert client.synced.is_set(), client.close_code
    assert plain_text(client.doc, stores.settings.doc_field) == "Dear Sir,\nPay."
    await client.close()


async def test_an_update_in_the_log_that_does_not_decode_is_skipped(
    stores: Running, caplog: pytest.LogCaptureFixture
) -> None:
    """A `doc.update` pycrdt refuses (written past the gateway's checks) is skipped by the load
    with a warning, as the projector and the snapshotter skip it: the letter opens, with what
    the other records hold (it was a 4503 on every connect)."""
    letter = await stores.create_letter("Dear Sir,")
    await _unloaded(stores, letter)
    ctx = stores.app.state.gateway.ctx
    entry = ctx.entry(letter, b"\x01garbage", firm="firm-a", user="svc", type="doc.update")
    await stores.log.append(stores.settings.topic(Topic.LETTERS), letter.encode(), [entry])
    with caplog.at_level(logging.WARNING, logger="gateway.live.loader"):
        client = await stores.client(letter)
        waits = [asyncio.create_task(e.wait()) for e in (client.synced, client.closed)]
        await asyncio.wait(waits, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        for wait in waits:
            wait.cancel()
    assert client.synced.is_set(), client.close_code  # it was closed with 4503 load_failed
    assert plain_text(client.doc, stores.settings.doc_field) == "Dear Sir,"
    messages = [r.getMessage() for r in caplog.records]
    assert any(letter in m and "1 update(s) in the log do not decode" in m for m in messages)
    await client.close()


async def test_a_load_failure_not_the_logs_is_not_called_log_unavailable(
    stores: Running, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A load that fails for another reason than the log (here an injected bug): still 4503,
    but `load_failed`, and no "append failed" blaming the log."""
    letter = await stores.create_letter("Dear Sir,")
    await _unloaded(stores, letter)

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug in the load")

    monkeypatch.setattr(loader, "load", broken)
    with caplog.at_level(logging.WARNING, logger="gateway.live.room"):
        client = await stores.client(letter)
        await client.closed.wait()
    assert (client.close_code, client.ws.close_reason) == (4503, "load_failed")
    messages = [r.getMessage() for r in caplog.records]
    assert any(letter in m and "loading" in m and "load_failed" in m for m in messages), messages
    assert not any("append failed" in m for m in messages), messages
