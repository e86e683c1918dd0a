"""Fixtures: a gateway with Redis, the embedded log and the projector running in-process."""

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
import redis.asyncio as aioredis

from eventlog.factory import open_log
from eventlog.records import Log
from schemas.settings import Settings
from tests.gateway.harness import Running, running_gateway
from tests.gateway.pairs import pair  # noqa: F401  (fixtures)
from tests.projector.support import projector


@dataclass
class Collab:
    gw: Running
    redis: aioredis.Redis
    http: httpx.AsyncClient

    def auth(self, user: str = "u1", role: str = "editor", firm: str = "firm-a") -> dict[str, str]:
        token = self.gw.token(user=user, role=role, firm=firm, name=user.upper())
        return {"Authorization": f"Bearer {token}"}

    async def call(
        self, method: str, path: str, user: str = "u1", role: str = "editor", **kw: Any
    ) -> httpx.Response:
        headers = {**self.auth(user, role, kw.pop("firm", "firm-a")), **kw.pop("headers", {})}
        return await self.http.request(method, path, headers=headers, **kw)


Call = Callable[..., Awaitable[httpx.Response]]


@pytest_asyncio.fixture(loop_scope="session")
async def collab(tmp_path: Path, redis_db: str) -> AsyncIterator[Collab]:
    async with collab_on(tmp_path, redis_db) as running:
        yield running


@asynccontextmanager
async def collab_on(tmp_path: Path, redis_db: str, **overrides: Any) -> AsyncIterator[Collab]:
    """The gateway, the projector and Redis of `collab`, with other settings."""
    async with stoppable_on(tmp_path, redis_db, **overrides) as running:
        yield running.collab


@asynccontextmanager
async def unprojected_on(tmp_path: Path, redis_db: str, **overrides: Any) -> AsyncIterator[Collab]:
    """`collab_on` without the projector: Redis holds only what the gateway writes."""
    async with stoppable_on(tmp_path, redis_db, projected=False, **overrides) as running:
        yield running.collab


@dataclass
class Stoppable:
    """`collab_on`'s stack, with what a test needs to stop the projector (`folding.aclose()`)
    and to start one again (`projector(settings, log)`)."""

    collab: Collab
    folding: AsyncExitStack
    settings: Settings
    log: Log


@asynccontextmanager
async def stoppable_on(
    tmp_path: Path, redis_db: str, projected: bool = True, **overrides: Any
) -> AsyncIterator[Stoppable]:
    settings = Settings(**{
        "data_dir": tmp_path / "steno", "redis_url": redis_db, "partitions": 2,
        "database_url": None, **overrides,
    })  # fmt: skip
    log = open_log(settings)
    await log.start()
    redis = aioredis.Redis.from_url(redis_db)
    folding = AsyncExitStack()
    try:
        if projected:
            await folding.enter_async_context(projector(settings, log))
        async with folding, running_gateway(settings, log, redis) as gw:
            async with httpx.AsyncClient(base_url=gw.http, timeout=10) as http:
                yield Stoppable(Collab(gw, redis, http), folding, settings, log)
    finally:
        await redis.aclose()
        await log.close()
