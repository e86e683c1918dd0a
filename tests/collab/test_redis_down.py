"""Redis unreachable while the gateway runs: the routes that need it (presence, comments,
locks, notifications) answer 503 with Retry-After, as documented for a gateway without Redis;
they answered 500, each with a traceback in the log. The document routes do not need Redis."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from schemas.settings import Settings
from steno_collab.embedded import EmbeddedServices
from tests.gateway.harness import Running, running_gateway
from tests.support import own_services

ROUTES = [
    ("GET", "/presence"),
    ("GET", "/comments"),
    ("GET", "/locks"),
    ("POST", "/locks/intro"),
    ("GET", "/notifications"),
]


@pytest_asyncio.fixture(loop_scope="session")
async def redis_then_down(service_tmp: Path) -> AsyncIterator[tuple[Running, EmbeddedServices]]:
    services = await own_services(service_tmp / "redis", persistent=False, postgres=False)
    try:
        settings = Settings(data_dir=service_tmp / "steno", redis_url=services.redis_url)
        client = aioredis.Redis.from_url(services.redis_url, socket_timeout=2)
        try:
            async with running_gateway(settings, redis=client) as gw:
                yield gw, services
        finally:
            await client.aclose()
    finally:
        await services.stop()


@pytest.mark.parametrize(("method", "route"), ROUTES)
async def test_a_route_that_needs_redis_says_503_while_it_is_down(
    redis_then_down: tuple[Running, EmbeddedServices], method: str, route: str
) -> None:
    gw, services = redis_then_down
    letter = await gw.create_letter(content="Dear Sir")
    path = route if route == "/notifications" else f"/v1/letters/{letter}{route}"
    path = "/v1/notifications" if route == "/notifications" else path
    headers = {"Authorization": f"Bearer {gw.token(user='alice')}"}
    assert services.redis is not None
    await services.redis.stop()
    async with httpx.AsyncClient(base_url=gw.http, timeout=10) as http:
        answer = await http.request(method, path, headers=headers)
        assert answer.status_code == 503, answer.text
        assert answer.json() == {"detail": "redis unavailable"}
        assert int(answer.headers["Retry-After"]) > 0
        letter_read = await http.get(f"/v1/letters/{letter}", headers=headers)
        assert letter_read.status_code == 200 and letter_read.json()["content"] == "Dear Sir"
