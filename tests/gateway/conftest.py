"""Fixtures: a gateway with the real embedded log in a temporary directory (and one with Redis
and PostgreSQL too); both read paths; a client of a fresh Redis database."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from gateway import transport
from schemas.settings import Settings
from tests.gateway.harness import Running, running_gateway, running_with_stores
from tests.gateway.pairs import pair, pair_without_redis  # noqa: F401  (fixtures)


@pytest_asyncio.fixture(loop_scope="session")
async def gw(tmp_path: Path) -> AsyncIterator[Running]:
    # A session lasts its token's life plus the JWT leeway: a short one keeps expiry tests short.
    settings = Settings(data_dir=tmp_path / "steno", partitions=2, jwt_leeway_s=2)
    async with running_gateway(settings) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="session")
async def stores(tmp_path: Path, redis_db: str, pg_database: str) -> AsyncIterator[Running]:
    """A gateway with Redis and PostgreSQL; an idle letter leaves memory after 0.2 s."""
    settings = Settings(data_dir=tmp_path / "steno", partitions=2, idle_unload_s=0.2,
                        redis_url=redis_db, database_url=pg_database)  # fmt: skip
    async with running_with_stores(settings) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="session")
async def stores_writer(stores: Running) -> AsyncIterator[asyncpg.Connection]:
    """A connection to `stores`' PostgreSQL for a test's own rows (the gateway only reads)."""
    assert stores.settings.database_url is not None
    conn = await asyncpg.connect(stores.settings.database_url)
    try:
        yield conn
    finally:
        await conn.close()


@pytest_asyncio.fixture
async def small_outbox(tmp_path: Path) -> AsyncIterator[Running]:
    """A gateway that drops a client that does not read early (slow-consumer tests)."""
    settings = Settings(
        data_dir=tmp_path / "steno", partitions=1, max_outbox_bytes=256 << 10,
        rate_messages_per_s=1000, rate_burst=1000, max_document_bytes=256 << 20,
    )  # fmt: skip
    async with running_gateway(settings) as running:
        yield running


@pytest.fixture(params=["direct", "asgi"])
def read_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways a connection gets its messages: uvicorn's direct reads (gateway/transport.py,
    READ_DIRECT), and the ASGI read loop, which is what any other server gives."""
    if request.param == "asgi":
        monkeypatch.setattr(transport, "_NEEDS_TO_READ", ("not_in_this_uvicorn",))
    return str(request.param)


@pytest.fixture
async def redis(redis_db: str) -> AsyncIterator[Any]:
    client = aioredis.Redis.from_url(redis_db)
    try:
        yield client
    finally:
        await client.aclose()
