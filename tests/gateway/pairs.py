"""Two gateway instances on one Kafka log (Tansu), as fixtures: `pair` shares a Redis as well
(locks, comments' notices), `pair_without_redis` has none. conftest.py of tests/gateway and
tests/collab register them; a test takes them by name."""

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
import redis.asyncio as aioredis

from schemas.settings import Settings
from tests.gateway.harness import Running, running_gateway


@pytest_asyncio.fixture(loop_scope="session")
async def pair(
    tmp_path: Path, kafka_bootstrap: str, redis_db: str
) -> AsyncIterator[tuple[Running, Running]]:
    prefix = f"c{uuid.uuid4().hex[:8]}."

    def settings(name: str) -> Settings:
        return Settings(data_dir=tmp_path / name, partitions=2, topic_prefix=prefix,
                        redis_url=redis_db, database_url=None,
                        log_url=f"kafka://{kafka_bootstrap}", kafka_idempotence=False)  # fmt: skip

    redis_a, redis_b = aioredis.Redis.from_url(redis_db), aioredis.Redis.from_url(redis_db)
    try:
        async with (
            running_gateway(settings("a"), redis=redis_a) as a,
            running_gateway(settings("b"), redis=redis_b) as b,
        ):
            yield a, b
    finally:
        await redis_a.aclose()
        await redis_b.aclose()


@pytest_asyncio.fixture(loop_scope="session")
async def pair_without_redis(
    tmp_path: Path, kafka_bootstrap: str
) -> AsyncIterator[tuple[Running, Running]]:
    prefix = f"t{uuid.uuid4().hex[:8]}."

    def settings(name: str) -> Settings:
        return Settings(data_dir=tmp_path / name, partitions=2, topic_prefix=prefix,
                        log_url=f"kafka://{kafka_bootstrap}", kafka_idempotence=False)  # fmt: skip

    async with running_gateway(settings("a")) as a, running_gateway(settings("b")) as b:
        assert a.app.state.gateway.ctx.gateway_id != b.app.state.gateway.ctx.gateway_id
        yield a, b
