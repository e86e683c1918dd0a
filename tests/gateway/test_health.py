"""Readiness shared by concurrent callers, and /metrics behind an optional scraper token."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest_asyncio
import redis.asyncio as aioredis

from gateway.api.health import READY_REUSE_S, Readiness
from schemas.settings import Settings
from tests.gateway.harness import Running, running_gateway, running_with_stores


@pytest_asyncio.fixture(loop_scope="session")
async def stores(tmp_path: Path, redis_db: str, pg_database: str) -> AsyncIterator[Running]:
    settings = Settings(data_dir=tmp_path / "steno", partitions=1, redis_url=redis_db,
                        database_url=pg_database, metrics_token="scrape-me")  # fmt: skip
    async with running_with_stores(settings) as running:
        yield running


async def _pings(gw: Running) -> int:
    """PINGs the Redis server has answered (its own count, all clients)."""
    stats = await gw.app.state.gateway.ctx.redis.info("commandstats")
    return int(stats.get("cmdstat_ping", {}).get("calls", 0))


async def test_concurrent_readiness_probes_share_one_round_of_checks(stores: Running) -> None:
    before = await _pings(stores)
    async with httpx.AsyncClient(base_url=stores.http) as http:
        answers = await asyncio.gather(*(http.get("/readyz") for _ in range(50)))
        assert {r.status_code for r in answers} == {200}
        assert answers[0].json() == {"log": "ok", "redis": "ok", "postgres": "ok"}
        assert await _pings(stores) == before + 1
        readiness: Readiness = stores.app.state.readiness
        readiness._answered_at -= READY_REUSE_S  # the answer is a second old: asked afresh
        assert (await http.get("/readyz")).status_code == 200
        assert await _pings(stores) == before + 2


async def test_metrics_want_the_scrapers_token_when_one_is_set(stores: Running) -> None:
    async with httpx.AsyncClient(base_url=stores.http) as http:
        assert (await http.get("/metrics")).status_code == 401
        wrong = {"Authorization": "Bearer scrape-you"}
        assert (await http.get("/metrics", headers=wrong)).status_code == 401
        right = await http.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
        assert right.status_code == 200
        assert 'gateway_refusals_total{reason="unauthorized"} 2.0' in right.text


async def test_a_store_that_never_answers_makes_readiness_fail_not_hang(tmp_path: Path) -> None:
    """A host that accepts connections and answers nothing (a hung Redis, a black-holed route)."""
    accepted: list[asyncio.StreamWriter] = []
    silent = await asyncio.start_server(lambda _r, w: accepted.append(w), "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    redis = aioredis.Redis(host="127.0.0.1", port=port)
    settings = Settings(data_dir=tmp_path / "steno", partitions=1)
    try:
        async with running_gateway(settings, redis=redis) as gw:
            async with httpx.AsyncClient(base_url=gw.http, timeout=30) as http:
                ready = await http.get("/readyz")
            assert ready.status_code == 503
            assert ready.json() == {"log": "ok", "redis": "error: TimeoutError"}
    finally:
        await redis.aclose()
        for writer in accepted:
            writer.close()
        silent.close()
        await silent.wait_closed()
