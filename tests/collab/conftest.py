"""Fixtures: a gateway with Redis, the embedded log and the projector running in-process."""

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
import redis.asyncio as aioredis

from eventlog.factory import open_log
from schemas.settings import Settings
from tests.gateway.harness import Running, running_gateway
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


def collab_on(
    tmp_path: Path, redis_db: str, **overrides: Any
) -> AbstractAsyncContextManager[Collab]:
    """The gateway, the projector and Redis of `collab`, with other settings."""
    return _running(tmp_path, redis_db, True, overrides)


def unprojected_on(
    tmp_path: Path, redis_db: str, **overrides: Any
) -> AbstractAsyncContextManager[Collab]:
    """`collab_on` without the projector: Redis holds only what the gateway writes."""
    return _running(tmp_path, redis_db, False, overrides)


@asynccontextmanager
async def _running(
    tmp_path: Path, redis_db: str, projected: bool, overrides: dict[str, Any]
) -> AsyncIterator[Collab]:
    settings = Settings(**{
        "data_dir": tmp_path / "steno", "redis_url": redis_db, "partitions": 2,
        "database_url": None, **overrides,
    })  # fmt: skip
    log = open_log(settings)
    await log.start()
    redis = aioredis.Redis.from_url(redis_db)
    try:
        folding = projector(settings, log) if projected else nullcontext()
        async with folding, running_gateway(settings, log, redis) as gw:
            async with httpx.AsyncClient(base_url=gw.http, timeout=10) as http:
                yield Collab(gw, redis, http)
    finally:
        await redis.aclose()
        await log.close()
