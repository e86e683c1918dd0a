"""Fixtures of the projector tests: an embedded log and a Redis client on a fresh database."""

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest_asyncio
import redis.asyncio as aioredis

from eventlog import Log
from schemas.settings import Settings
from tests.support import started_log


@pytest_asyncio.fixture(loop_scope="session")
async def settings(tmp_path: Path, redis_db: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "steno", redis_url=redis_db, partitions=4, database_url=None
    )


@pytest_asyncio.fixture(loop_scope="session")
async def log(settings: Settings) -> AsyncIterator[Log]:
    async with started_log(settings) as log:
        yield log


@pytest_asyncio.fixture(loop_scope="session")
async def client(redis_db: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_db)
    try:
        yield client
    finally:
        await client.aclose()


@pytest_asyncio.fixture(loop_scope="session")
async def other_db(redis_db: str) -> AsyncIterator[Callable[[], str]]:
    """A second fresh database for replays to compare with."""
    base, number = redis_db.rsplit("/", 1)
    url = f"{base}/{(int(number) + 128) % 256 or 1}"
    c = aioredis.Redis.from_url(url)
    await c.flushdb()
    try:
        yield lambda: url
    finally:
        await c.flushdb()
        await c.aclose()
