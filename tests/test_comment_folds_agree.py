"""The projector (Redis, what REST serves) and the snapshotter (PostgreSQL's materialised
comments) fold the same comment events to the same live comments, races included (README
"Comments", "Races"), and notifications point only at live comments."""

import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest_asyncio
import redis.asyncio as aioredis

from eventlog import Log
from schemas.settings import Settings
from snapshotter.consumer import Snapshotter
from snapshotter.migrate import migrate
from snapshotter.store import Store
from tests.comment_races import USERS, stream
from tests.projector.support import append, caught_up, projector, redis_bytes
from tests.snapshotter.scripts import drain
from tests.support import started_log

# thread id -> (resolved, anchor, {comment id: (author, body, mentions, created_at, edited_at)}),
# the times in ms: a letter read cold (from PostgreSQL) shows those Redis showed (re-read RI).
Live = dict[str, Any]


@pytest_asyncio.fixture(loop_scope="session")
async def settings(tmp_path: Path, redis_db: str, pg_database: str) -> Settings:
    await migrate(pg_database)
    return Settings(
        data_dir=tmp_path / "steno", redis_url=redis_db, database_url=pg_database, partitions=2
    )


@pytest_asyncio.fixture(loop_scope="session")
async def log(settings: Settings) -> AsyncIterator[Log]:
    async with started_log(settings) as the_log:
        yield the_log


async def test_redis_and_postgresql_hold_the_same_live_comments(
    settings: Settings, log: Log, redis_db: str, pg_database: str
) -> None:
    events = stream(seed=7, letters=5, steps=1500)
    assert min(events.races.values()) >= 10 and len(events.races) == 5, events.races
    await append(log, settings, events.events)
    letters = [e.letter_id for e in events.events if e.type == "letter.created"]
    client = aioredis.Redis.from_url(redis_db)
    store = await Store.open(pg_database)
    try:
        async with projector(settings, log):
            await caught_up(log, settings, client)
        await drain(Snapshotter(settings, log, store), log)
        in_redis = {lid: await _redis_live(client, lid) for lid in letters}
        in_postgres = {lid: await _postgres_live(store.pool, lid) for lid in letters}
        notes = await _notes(client)
    finally:
        await client.aclose()
        await store.close()

    assert in_redis == in_postgres
    assert sum(len(t[2]) for live in in_redis.values() for t in live.values()) > 50
    live_ids = {(lid, cid) for lid, live in in_redis.items() for t in live.values() for cid in t[2]}
    assert notes and notes <= {(u, lid, cid) for u in USERS for lid, cid in live_ids}
    # Each live comment's mentions (the author aside) were notified when it was written.
    for lid, live in in_redis.items():
        for _, _, comments in live.values():
            for cid, (author, _, mentions, _, _) in comments.items():
                assert {(u, lid, cid) for u in mentions if u != author} <= notes


async def _redis_live(client: aioredis.Redis, letter_id: str) -> Live:
    raw = await client.get(f"comments:{letter_id}")
    threads = json.loads(redis_bytes(raw)) if raw is not None else []
    return {
        t["thread_id"]: (
            t["resolved"],
            t["anchor"],
            {
                c["comment_id"]: (
                    c["author"]["id"],
                    c["body"],
                    sorted(c["mentions"]),
                    c["created_at"],
                    c["edited_at"],
                )
                for c in t["comments"]
            },
        )
        for t in threads
    }


async def _postgres_live(pool: asyncpg.Pool, letter_id: str) -> Live:
    rows = await pool.fetch(
        "SELECT t.thread_id, t.status, t.anchor, c.comment_id, c.author_id, c.body, c.mentions,"
        " c.created_at, c.edited_at FROM comments c JOIN comment_threads t USING (thread_id)"
        " WHERE c.letter_id = $1 AND c.deleted_at IS NULL",
        letter_id,
    )
    live: Live = {}
    for r in rows:
        thread: tuple[bool, Any, dict[str, Any]] = (
            r["status"] == "resolved",
            json.loads(r["anchor"]),
            {},
        )
        _, _, comments = live.setdefault(r["thread_id"], thread)
        comments[r["comment_id"]] = (
            r["author_id"],
            r["body"],
            sorted(json.loads(r["mentions"])),
            _ms(r["created_at"]),
            None if r["edited_at"] is None else _ms(r["edited_at"]),
        )
    return live


def _ms(at: datetime) -> int:
    return round(at.timestamp() * 1000)


async def _notes(client: aioredis.Redis) -> set[tuple[str, str, str]]:
    """(user, letter, comment) of every notification of the firm's users."""
    out = set()
    for user in USERS:
        for field in await client.hkeys(f"notifications:firm-1:{user}"):
            letter, cid = redis_bytes(field).decode().split(":")
            out.add((user, letter, cid))
    return out
