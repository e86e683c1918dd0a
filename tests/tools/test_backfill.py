"""Backfill: rebuilding Redis and PostgreSQL from the log gives what the consumers produce;
reruns change nothing; an interrupted run, rerun, ends equal to an uninterrupted one."""

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any

import asyncpg
import pytest_asyncio
import redis.asyncio as aioredis

from eventlog import Log
from eventlog.factory import open_log
from schemas.events import Topic
from schemas.settings import Settings
from snapshotter.document import LetterDocument
from snapshotter.migrate import migrate
from tests.support import eventually
from tests.tools.backfill_logs import LETTERS, all_agree, fill, typing
from tests.tools.cli import cli, cli_env
from tests.tools.conftest import recorded
from tools.backfill import active_since, backfill
from tools.backfill_projector import reset
from tools.progress import Meter
from tools.sources import open_sources


async def differences(got: dict[str, Any], reference: Settings) -> str:
    """The rows one side has and the other lacks, for the failure message."""
    want = await pg_rows(reference.database_url or "")
    lines = []
    for kind in got:
        extra = [dict(r) for r in got[kind] if r not in want[kind]]
        missing = [dict(r) for r in want[kind] if r not in got[kind]]
        lines.append(f"{kind}: extra {extra[:3]}, missing {missing[:3]}")
    return "\n".join(lines)


async def pg_rows(dsn: str) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        versions = await conn.fetch(
            "SELECT letter_id, version_number, content, document::text, log_offset,"
            " change_data::text, created_at FROM letter_version ORDER BY 1, 2"
        )
        audit = await conn.fetch(
            "SELECT id, change_type, change_data::text, log_offset FROM collaboration ORDER BY 1"
        )
        letters = await conn.fetch("SELECT * FROM letters ORDER BY 1")
        return {"versions": versions, "audit": audit, "letters": letters}
    finally:
        await conn.close()


async def redis_state(url: str) -> dict[bytes, Any]:
    client = aioredis.Redis.from_url(url)
    try:
        out: dict[bytes, Any] = {}
        for lid in LETTERS:
            # Not the projector's private `projector:letter:*` JSON: its `activity` depends on
            # how records were batched (an update folded after a leave in the same batch).
            for key in (f"ydoc:{lid}:offset", f"comments:{lid}"):
                out[key.encode()] = await client.get(key)
            state = await client.get(f"ydoc:{lid}")
            assert not isinstance(state, str)  # bytes, or None where nothing was projected
            text = LetterDocument("default", state or b"").snapshot().content
            out[f"text:{lid}".encode()] = text
            out[f"meta:{lid}".encode()] = await client.hgetall(f"letter:{lid}:meta")
        return out
    finally:
        await client.aclose()


async def killed_mid_run(
    env: dict[str, str], target: str, progress: Callable[[], Awaitable[int]], total: int
) -> None:
    """Start a reset backfill, SIGKILL it once it has folded part of the log."""
    proc = await cli(env, "backfill", target, "--from-beginning", "--reset")
    try:
        await eventually(partial(_partial, progress, total), 60, 0.005)
    finally:
        proc.kill()
        await proc.communicate()
    assert 0 < await progress() < total  # really interrupted in the middle


async def _partial(progress: Callable[[], Awaitable[int]], total: int) -> bool:
    return 0 < await progress() < total


async def test_backfill_all_rebuilds_and_is_idempotent(
    settings: Settings, log: Log, make_settings: Callable[..., Settings]
) -> None:
    await fill(log, settings)
    async with open_sources(settings, redis=True, pg=True) as src:
        summary = await backfill(src, "all", meter=Meter(every_s=3600))
        assert any("projector" in line for line in summary.lines)
        await all_agree(src)
        first = (await pg_rows(settings.database_url or ""), await redis_state(src_url(settings)))
        await backfill(src, "all", meter=Meter(every_s=3600))  # nothing new: nothing changes
        await backfill(src, "all", reset=True, meter=Meter(every_s=3600))  # fresh: same result
        await all_agree(src)
        again = (await pg_rows(settings.database_url or ""), await redis_state(src_url(settings)))
    assert again == first
    assert len(first[0]["versions"]) >= 4 and len(first[0]["audit"]) >= 10


async def test_worker_processes_split_the_partitions_and_build_the_same_state(
    make_settings: Callable[..., Settings], ref_redis: str
) -> None:
    settings = make_settings(partitions=4)
    log = open_log(settings)
    await log.start()
    try:
        for seed, letter_id in enumerate(LETTERS):
            await recorded(log, settings, letter_id, seed=seed + 20, steps=40)
        topic = settings.topic(Topic.LETTERS)
        assert len({log.partition_for(topic, lid.encode()) for lid in LETTERS}) > 1
    finally:
        await log.close()
    counts = []
    for workers, redis_url in ((1, ref_redis), (2, src_url(settings))):
        async with open_sources(settings.model_copy(update={"redis_url": redis_url})) as src:
            src.redis = aioredis.Redis.from_url(redis_url)
            try:
                summary = await backfill(
                    src, "projector", reset=True, workers=workers, meter=Meter(every_s=3600)
                )
            finally:
                await src.redis.aclose()
        counts.append(summary.lines[0].split(" in ")[0])
    assert counts[0] == counts[1]  # "projector: N events"
    assert await redis_state(src_url(settings)) == await redis_state(ref_redis)


def src_url(settings: Settings) -> str:
    assert settings.redis_url is not None
    return settings.redis_url


@pytest_asyncio.fixture(loop_scope="session")
async def ref_db(pg_database: str) -> AsyncIterator[str]:
    name = pg_database.rsplit("/", 1)[1] + "_ref"
    admin = await asyncpg.connect(pg_database.rsplit("/", 1)[0] + "/postgres")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        dsn = pg_database.rsplit("/", 1)[0] + f"/{name}"
        await migrate(dsn)
        yield dsn
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest_asyncio.fixture(loop_scope="session")
async def ref_redis(redis_db: str) -> AsyncIterator[str]:
    base, number = redis_db.rsplit("/", 1)
    url = f"{base}/{(int(number) + 128) % 256 or 1}"
    client = aioredis.Redis.from_url(url)
    await client.flushdb()
    try:
        yield url
        await client.flushdb()
    finally:
        await client.aclose()


async def test_killed_backfill_resumes(
    make_settings: Callable[..., Settings], log: Log, ref_db: str, ref_redis: str
) -> None:
    settings = make_settings()
    await fill(log, settings)
    await typing(log, settings, "letter-c", 4000)
    reference = make_settings(database_url=ref_db, redis_url=ref_redis)
    async with open_sources(reference, redis=True, pg=True) as src:
        await backfill(src, "all", meter=Meter(every_s=3600))
    # Small batches: many commits, so the kill lands between two of them.
    env = cli_env(settings, STENO_SNAPSHOTTER_BATCH="20", STENO_PROJECTOR_BATCH_RECORDS="20",
                  STENO_PROJECTOR_FOLLOW_BATCH="20")  # fmt: skip
    end = (await log.end_offsets(settings.topic(Topic.LETTERS)))[0]
    async with open_sources(settings, redis=True, pg=True) as src:
        await backfill(src, "all", meter=Meter(every_s=3600))  # something to reset
        topic = settings.topic(Topic.LETTERS)

        async def snapshotted() -> int:
            value = await src.pg.fetchval(
                "SELECT next_offset FROM consumer_positions WHERE consumer_group = 'snapshotter'"
            )
            return int(value or 0)

        async def projected() -> int:
            assert src.redis is not None
            return int(await src.redis.get(f"projector:pos:{topic}:0") or 0)

        await killed_mid_run(env, "snapshotter", snapshotted, end)
        await killed_mid_run(env, "projector", projected, end)
    for target in ("snapshotter", "projector"):
        proc = await cli(env, "backfill", target, "--from-beginning", "--reset")
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        assert "(reset resumed)" in out.decode()  # continued, did not wipe again
    got = await pg_rows(settings.database_url or "")
    assert got == await pg_rows(reference.database_url or ""), await differences(got, reference)
    assert await redis_state(src_url(settings)) == await redis_state(src_url(reference))


async def test_backfill_chosen_letters(settings: Settings, log: Log) -> None:
    await fill(log, settings)
    async with open_sources(settings, redis=True, pg=True) as src:
        await backfill(src, "all", meter=Meter(every_s=3600))
        before = await pg_rows(settings.database_url or "")
        assert src.redis is not None
        await src.redis.set("ydoc:letter-a", b"\x00\x00")  # damage one letter
        await src.pg.execute("DELETE FROM collaboration WHERE letter_id = 'letter-a'")
        await backfill(src, "all", letters=["letter-a"], meter=Meter(every_s=3600))
        await all_agree(src)
        assert await pg_rows(settings.database_url or "") == before


async def test_backfill_since_rebuilds_the_letters_active_since(
    settings: Settings, log: Log
) -> None:
    await recorded(log, settings, "letter-a", seed=1, steps=30)
    since = await next_ms(log, settings)
    await recorded(log, settings, "letter-b", seed=2, steps=30)
    async with open_sources(settings, redis=True, pg=True) as src:
        await backfill(src, "all", meter=Meter(every_s=3600))
        assert await active_since(src, since) == ["letter-b"]
        assert src.redis is not None
        await src.redis.set("ydoc:letter-b", b"\x00\x00")
        summary = await backfill(src, "all", since_ms=since, meter=Meter(every_s=3600))
        assert summary.lines[0].startswith("projector: 1 letter in ")
        await all_agree(src)


async def next_ms(log: Log, settings: Settings) -> int:
    """A record time later than every record so far (waits for the clock to tick)."""
    topic = settings.topic(Topic.LETTERS)
    end = (await log.end_offsets(topic))[0]
    last = (await log.read(topic, 0, end - 1, 1))[0].timestamp
    await eventually(lambda: time.time_ns() // 1_000_000 > last + 1, interval=0.001)
    return last + 1


async def test_reset_wipes_notifications_and_leaves_the_gateways_keys(redis_db: str) -> None:
    client = aioredis.Redis.from_url(redis_db)
    try:
        # A stale notification (its comment is gone from the log's projection) in a user's hash.
        await client.hset("notifications:bob", "letter-x:c1", "{}")
        await client.set("lock:letter-x:s1", "holder")
        await client.set("gateway:gw-1:alive", "1")
        assert await reset(client)
        assert not await client.exists("notifications:bob")
        assert await client.exists("lock:letter-x:s1", "gateway:gw-1:alive") == 2
    finally:
        await client.aclose()
