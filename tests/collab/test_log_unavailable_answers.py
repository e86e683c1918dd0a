"""Routes that ask the log for its end offsets (a lock grant's or keyed create's gate while the
restored marker is missing, a comment check against the log's end, a notifications read while
a partition has no projector position) answer its failure as every other route does: 503
`{"detail": "log unavailable"}` with `Retry-After: 1` (gateway/api/responses.py). Real log,
Redis and PostgreSQL; only the log's `end_offsets` fails, on demand."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
import redis.asyncio as aioredis

from eventlog.errors import LogUnavailableError
from eventlog.factory import open_log
from gateway.api.responses import LOG_RETRY_S
from schemas.bounded_pg import bounded_pool
from schemas.keys import RESTORED, ydoc_offset_key
from schemas.rebuilds import PROJECTOR_RESET
from schemas.settings import Settings
from tests.gateway.faults import FaultyLog
from tests.gateway.harness import Running, running_gateway

LOG_UNAVAILABLE = (503, {"detail": "log unavailable"}, str(int(LOG_RETRY_S)))


class EndsFaultyLog(FaultyLog):
    """`end_offsets` fails while `ends_broken`."""

    ends_broken = False

    async def end_offsets(self, topic: str) -> dict[int, int]:
        if self.ends_broken:
            raise LogUnavailableError("injected: the log's ends cannot be read")
        return await self.inner.end_offsets(topic)


@dataclass
class Env:
    gw: Running
    log: EndsFaultyLog
    redis: aioredis.Redis
    http: httpx.AsyncClient
    letter: str

    async def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        token = self.gw.token(user="al", role="editor", firm="firm-a", name="AL")
        headers = {"Authorization": f"Bearer {token}", **kw.pop("headers", {})}
        return await self.http.request(method, path, headers=headers, **kw)

    async def down(self, method: str, path: str, **kw: Any) -> tuple[int, Any, str | None]:
        """The answer while the log's ends cannot be read."""
        self.log.ends_broken = True
        try:
            r = await self.call(method, path, **kw)
        finally:
            self.log.ends_broken = False
        return r.status_code, r.json(), r.headers.get("Retry-After")


@pytest_asyncio.fixture(loop_scope="session")
async def env(tmp_path: Path, redis_db: str, pg_database: str) -> AsyncIterator[Env]:
    settings = Settings(
        data_dir=tmp_path / "steno",
        redis_url=redis_db,
        database_url=pg_database,
        partitions=1,
        locks_auto_restore=False,  # no restore racing the gate's own look at the log
    )
    real = open_log(settings)
    await real.start()
    log = EndsFaultyLog(real)
    redis = aioredis.Redis.from_url(redis_db)
    pg = await bounded_pool(pg_database, 5.0, max_size=2)
    try:
        async with running_gateway(settings, log, redis, pg) as gw:
            async with httpx.AsyncClient(base_url=gw.http, timeout=10) as http:
                letter = await gw.create_letter("Intro")
                await redis.delete(RESTORED)  # as a wipe leaves it: the gates ask the log
                yield Env(gw, log, redis, http, letter)
    finally:
        await pg.close()
        await redis.aclose()
        await real.close()


async def test_a_lock_grant(env: Env) -> None:
    assert await env.down("POST", f"/v1/letters/{env.letter}/locks/intro") == LOG_UNAVAILABLE


async def test_a_keyed_create(env: Env) -> None:
    body = {"firm_id": "firm-a", "title": "T"}
    headers = {"Idempotency-Key": "k1"}
    assert await env.down("POST", "/v1/letters", json=body, headers=headers) == LOG_UNAVAILABLE


async def test_a_reply_to_a_thread_the_projection_lacks(env: Env) -> None:
    await env.redis.set(ydoc_offset_key(env.letter), 0)  # folded, no thread: look at the log
    path = f"/v1/letters/{env.letter}/comments/t-unknown/replies"
    assert await env.down("POST", path, json={"body": "yes"}) == LOG_UNAVAILABLE


async def test_comments_while_the_projector_rebuilds(env: Env) -> None:
    await env.redis.set(PROJECTOR_RESET, "1")  # PostgreSQL is asked, up to the log's end
    try:
        path = f"/v1/letters/{env.letter}/comments"
        assert await env.down("GET", path) == LOG_UNAVAILABLE
    finally:
        await env.redis.delete(PROJECTOR_RESET)


async def test_notifications_with_a_partition_not_folded(env: Env) -> None:
    # No projector runs: the partition holds records and has no position.
    assert await env.down("GET", "/v1/notifications") == LOG_UNAVAILABLE
