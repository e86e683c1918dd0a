"""Fixtures of the snapshotter tests: a migrated fresh database, an embedded log with a clock
the test controls, and a snapshotter wired to both."""

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest_asyncio

from eventlog.embedded import EmbeddedLog
from eventlog.factory import topic_retention
from schemas.events import Topic
from schemas.settings import Settings
from snapshotter.consumer import Snapshotter
from snapshotter.migrate import migrate
from snapshotter.store import Store
from tests.conftest import fresh_database
from tests.snapshotter.scripts import Clock


@pytest_asyncio.fixture(loop_scope="session")
async def db(pg_database: str) -> str:
    await migrate(pg_database)
    return pg_database


@pytest_asyncio.fixture(loop_scope="session")
async def reference_db(pg_dsn: str) -> AsyncIterator[str]:
    """A second migrated database, for an uninterrupted run to compare `db` with."""
    async with fresh_database(pg_dsn) as dsn:
        await migrate(dsn)
        yield dsn


@pytest_asyncio.fixture(loop_scope="session")
async def clock() -> Clock:
    return Clock()


@pytest_asyncio.fixture(loop_scope="session")
async def make_settings(tmp_path: Path, db: str) -> Callable[..., Settings]:
    def build(**kw: Any) -> Settings:
        kw.setdefault("data_dir", tmp_path / "steno")
        kw.setdefault("database_url", db)
        kw.setdefault("partitions", 2)
        return Settings(**kw)

    return build


@pytest_asyncio.fixture(loop_scope="session")
async def elog(make_settings: Callable[..., Settings], clock: Clock) -> AsyncIterator[EmbeddedLog]:
    settings = make_settings()
    log = EmbeddedLog(
        settings.data_dir / "log", settings.partitions, topic_retention(settings), clock=clock
    )
    await log.start()
    yield log
    await log.close()


@pytest_asyncio.fixture(loop_scope="session")
async def store(db: str) -> AsyncIterator[Store]:
    s = await Store.open(db)
    yield s
    await s.close()


@pytest_asyncio.fixture(loop_scope="session")
async def snap_factory(
    make_settings: Callable[..., Settings], elog: EmbeddedLog, store: Store
) -> Callable[..., Snapshotter]:
    def build(**kw: Any) -> Snapshotter:
        return Snapshotter(make_settings(**kw), elog, store)

    return build


LETTERS = Settings().topic(Topic.LETTERS)
