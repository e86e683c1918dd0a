"""The scripted letter (tests/tools/scripted.py) in the log, beside a PostgreSQL database of its
own, for tests that truncate, drop or lose that database: `scripted_database`, and the
fixtures `log_kind` (the embedded log: PostgreSQL is under test, not the log) and `folded` (the
letter folded by the snapshotter into it). A test module uses the fixtures by importing them."""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
import pytest_asyncio

from eventlog import Log
from schemas.settings import Settings
from snapshotter.migrate import migrate
from tests.conftest import fresh_database
from tests.tools.scripted import LETTER, scripted
from tests.tools.snapshots import snapshot_all


@pytest.fixture
def log_kind() -> str:
    return "embedded"  # PostgreSQL is under test here, not the log


@asynccontextmanager
async def scripted_database(
    pg_dsn: str, make_settings: Callable[..., Settings], log: Log
) -> AsyncIterator[Settings]:
    """Settings naming a new database, empty, not even migrated; the letter in the log."""
    async with fresh_database(pg_dsn) as dsn:
        settings = make_settings(database_url=dsn)
        await scripted(log, settings)
        yield settings


@pytest_asyncio.fixture(loop_scope="session")
async def folded(
    pg_dsn: str, make_settings: Callable[..., Settings], log: Log
) -> AsyncIterator[Settings]:
    """The letter in the log, folded by the snapshotter into a database of its own."""
    async with scripted_database(pg_dsn, make_settings, log) as settings:
        assert settings.database_url is not None
        await migrate(settings.database_url)
        await snapshot_all(settings, log)
        yield settings


def names_the_rebuild(answer: httpx.Response) -> None:
    """A 503 naming the rebuild of the scripted letter's rows, with a Retry-After."""
    assert answer.status_code == 503, answer.text
    detail = answer.json()["detail"]
    assert f"backfill snapshotter --letters {LETTER}" in detail, detail
    assert int(answer.headers["Retry-After"]) > 0
