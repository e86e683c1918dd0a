"""Backfill: rebuilding Redis and PostgreSQL from the log gives what the consumers produce;
reruns change nothing; an interrupted run, rerun, ends equal to an uninterrupted one."""

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest_asyncio
import redis.asyncio as aioredis
from pycrdt import Doc, XmlElement, XmlFragment, XmlText

from eventlog import Entry, Log
from projector.settings import ProjectorSettings
from schemas import encode_event, new_event
from schemas.events import Topic
from schemas.settings import Settings
from snapshotter.migrate import migrate
from tests.tools.conftest import recorded
from tests.tools.session import FIRM, Session
from tools.backfill import backfill
from tools.progress import Meter
from tools.sources import Sources, open_sources
from tools.verify import verify_letter

LETTERS = ("letter-a", "letter-b", "letter-c")


async def fill(log: Log, settings: Settings, steps: int = 60) -> None:
    for seed, letter_id in enumerate(LETTERS[:2]):
        await recorded(log, settings, letter_id, seed=seed + 10, steps=steps)


async def typing(log: Log, settings: Settings, letter_id: str, n: int) -> None:
    """A letter typed one character per update, appended 500 updates at a time (cheap bulk)."""
    session = Session(log, settings, letter_id, random.Random(0))
    await session.create()
    doc: Doc[XmlFragment] = Doc()
    updates: list[bytes] = []
    doc.observe(lambda e: updates.append(e.update))
    root = doc.get("default", type=XmlFragment)
    root.children.append(XmlElement("paragraph", {}, [XmlText("")]))
    text = root.children[0].children[0]
    for i in range(n):
        text.insert(i, "abcdefghij"[i % 10])
    topic = settings.topic(Topic.LETTERS)
    for start in range(0, len(updates), 500):
        entries = []
        for update in updates[start : start + 500]:
            event = new_event(letter_id, update, firm=FIRM, user="typist", type="doc.update")
            _, value, headers = encode_event(event)
            entries.append(Entry(value, headers))
        await log.append(topic, letter_id.encode(), entries)


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
            for key in (f"ydoc:{lid}:offset", f"comments:{lid}", f"projector:letter:{lid}"):
                out[key.encode()] = await client.get(key)
            out[f"meta:{lid}".encode()] = await client.hgetall(f"letter:{lid}:meta")
        return out
    finally:
        await client.aclose()


class Interrupting(Meter):
    """Cancels the backfill once it has made some progress, but not all."""

    def __init__(self, task: Callable[[], "asyncio.Task[Any]"]) -> None:
        super().__init__(every_s=3600)
        self._task = task
        self.interrupted_at: int | None = None

    def advance_to(self, done: int) -> None:
        super().advance_to(done)
        if self.interrupted_at is None and 0 < done < self.total:
            self.interrupted_at = done
            self._task().cancel()


async def interrupted_then_rerun(settings: Settings, target: str, **options: Any) -> int:
    async with open_sources(settings, redis=True, pg=True) as src:
        holder: list[asyncio.Task[Any]] = []
        meter = Interrupting(lambda: holder[0])
        holder.append(asyncio.create_task(backfill(src, target, meter=meter, **options)))
        try:
            await holder[0]
            raise AssertionError("the backfill was not interrupted")
        except asyncio.CancelledError:
            pass
        assert meter.interrupted_at is not None
        await backfill(src, target, meter=Meter(every_s=3600), **options)
        return meter.interrupted_at


async def all_agree(src: Sources) -> None:
    for lid in LETTERS[:2]:
        findings = await verify_letter(src, lid)
        assert len(findings) == 2 and all(f.ok for f in findings), findings


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


async def test_interrupted_backfill_resumes(
    make_settings: Callable[..., Settings], log: Log, ref_db: str, ref_redis: str
) -> None:
    # Small batches: many commits, so the interruption lands in the middle.
    settings = make_settings(snapshotter_batch=20)
    await fill(log, settings)
    await typing(log, settings, "letter-c", 4000)
    reference = make_settings(database_url=ref_db, redis_url=ref_redis)
    async with open_sources(reference, redis=True, pg=True) as src:
        await backfill(src, "all", meter=Meter(every_s=3600))
    small = ProjectorSettings(metrics_port=None, batch_records=10, follow_batch=10)
    await interrupted_then_rerun(settings, "snapshotter", reset=True)
    await interrupted_then_rerun(settings, "projector", reset=True, projector_options=small)
    assert await pg_rows(settings.database_url or "") == await pg_rows(reference.database_url or "")
    assert await redis_state(src_url(settings)) == await redis_state(src_url(reference))


async def test_backfill_chosen_letters(settings: Settings, log: Log) -> None:
    await fill(log, settings)
    async with open_sources(settings, redis=True, pg=True) as src:
        await backfill(src, "all", meter=Meter(every_s=3600))
        before = await pg_rows(settings.database_url or "")
        await src.redis.set("ydoc:letter-a", b"\x00\x00")  # damage one letter
        await src.pg.execute("DELETE FROM collaboration WHERE letter_id = 'letter-a'")
        await backfill(src, "all", letters=["letter-a"], meter=Meter(every_s=3600))
        await all_agree(src)
        assert await pg_rows(settings.database_url or "") == before
