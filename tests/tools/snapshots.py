"""The snapshotter's own consumer run once over a whole log: the letter_version rows (and audit
rows) that replay starts from. Shared by the tools tests and bench/tools_replay.py."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from eventlog import Log
from schemas.events import Topic
from schemas.settings import Settings
from snapshotter.consumer import Snapshotter
from snapshotter.store import Store
from tests.support import eventually
from tests.tools.scripted import scripted


async def snapshot_all(settings: Settings, log: Log, per_read: int = 500) -> None:
    """Fold every partition of the letters topic up to its end, `per_read` records a batch."""
    assert settings.database_url is not None
    store = await Store.open(settings.database_url)
    try:
        snapshotter = Snapshotter(settings, log, store)
        await snapshotter.resume()
        topic = settings.topic(Topic.LETTERS)
        for partition, end in (await log.end_offsets(topic)).items():
            offset = snapshotter.positions[partition]
            while offset < end:
                batch = await log.read(topic, partition, offset, per_read)
                await snapshotter.handle(batch)
                offset = batch[-1].offset + 1
        await snapshotter.flush()
    finally:
        await store.close()


async def run_to_end(log: Log, settings: Settings) -> None:
    """The snapshotter's own run loop (`Snapshotter.run`) until it has folded partition 0 of the
    letters topic up to where it ends now; then stopped."""
    assert settings.database_url is not None
    end = (await log.end_offsets(settings.topic(Topic.LETTERS)))[0]
    store = await Store.open(settings.database_url)
    snapshotter = Snapshotter(settings, log, store)
    task = asyncio.create_task(snapshotter.run())
    try:
        await eventually(lambda: snapshotter.positions.get(0) == end, timeout=30)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.close()


@asynccontextmanager
async def snapshotted(settings: Settings, log: Log) -> AsyncIterator[asyncpg.Pool]:
    """The scripted letter (tests/tools/scripted.py) logged and folded by the snapshotter, and a
    pool on the settings' database."""
    await scripted(log, settings)
    await snapshot_all(settings, log)
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        yield pool
    finally:
        await pool.close()
