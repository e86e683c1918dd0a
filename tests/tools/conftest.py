"""Fixtures of the tools tests: settings on either log (embedded, Kafka), a migrated fresh
database, a fresh Redis database, a started writer log, and a recorded editing session."""

import asyncio
import logging
import random
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from eventlog import Log
from schemas.settings import Settings
from snapshotter import service
from snapshotter.migrate import migrate
from tests.support import started_log
from tests.tools.session import Session


@pytest.fixture(params=["embedded", "kafka"])
def log_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def log_options(request: pytest.FixtureRequest, log_kind: str) -> dict[str, Any]:
    """Settings of the log under test (the broker starts only for Kafka tests)."""
    if log_kind == "embedded":
        return {}
    bootstrap = request.getfixturevalue("kafka_bootstrap")
    return {
        "log_url": f"kafka://{bootstrap}",
        "kafka_idempotence": False,
        "topic_prefix": f"t{uuid.uuid4().hex[:10]}.",
    }


@pytest_asyncio.fixture(loop_scope="session")
async def db(pg_database: str) -> str:
    await migrate(pg_database)
    return pg_database


@pytest_asyncio.fixture(loop_scope="session")
async def make_settings(
    log_options: dict[str, Any], tmp_path: Path, db: str, redis_db: str
) -> Callable[..., Settings]:
    base: dict[str, Any] = {
        "data_dir": tmp_path / "steno",
        "partitions": 1,  # every letter in one partition: scans must skip the others' records
        "database_url": db,
        "redis_url": redis_db,
        "autosave_updates": 15,
        **log_options,
    }

    def build(**kw: Any) -> Settings:
        return Settings(**(base | kw))

    return build


@pytest_asyncio.fixture(loop_scope="session")
async def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest_asyncio.fixture(loop_scope="session")
async def log(settings: Settings) -> AsyncIterator[Log]:
    async with started_log(settings) as the_log:
        yield the_log


async def recorded(log: Log, settings: Settings, letter_id: str, seed: int, steps: int) -> Session:
    session = Session(log, settings, letter_id, random.Random(seed))
    await session.create()
    await session.run(steps)
    return session


async def pool(dsn: str) -> asyncpg.Pool:
    return await asyncpg.create_pool(dsn, min_size=1, max_size=2)


@pytest_asyncio.fixture(loop_scope="session")
async def pg(db: str) -> AsyncIterator[asyncpg.Pool]:
    the_pool = await pool(db)
    yield the_pool
    await the_pool.close()


@pytest_asyncio.fixture(loop_scope="session")
async def serving(
    settings: Settings,
    log: Log,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[asyncio.Task[None]]:
    """The snapshotter service on `log`, quick to retry and to see a rebuild end."""
    monkeypatch.setattr(service, "REBUILD_POLL_S", 0.05)
    monkeypatch.setattr(service, "BACKOFF_S", (0.05, 0.05))
    caplog.set_level(logging.INFO, logger="snapshotter.service")
    task = asyncio.create_task(service.serve(settings, log))
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
