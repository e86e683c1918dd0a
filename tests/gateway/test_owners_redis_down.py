"""Redis down or slow (here: stopped with SIGSTOP) on a gateway that has just loaded a letter
and so knows none of its client ids' owners: an update under an id the letter has structs
under is not claimed in this instance's memory for whoever sends it (a reviewer wrote under
alice's id that way, and alice's own typing after was dropped as duplicates). The owners are
read from the log, as without Redis; if that read cannot name them in time the update is
refused with 503 / 4503, to be sent again (gateway/live/ownership.py)."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from pycrdt import Doc

from gateway.live import loader
from schemas.settings import Settings
from steno_collab.embedded import EmbeddedServices
from tests.gateway.crash_owners import both_logged, logged, posing_as
from tests.gateway.harness import Running, YClient, running_gateway
from tests.support import eventually, frozen, own_services


@pytest_asyncio.fixture(loop_scope="session")
async def redis_of_its_own(service_tmp: Path) -> AsyncIterator[EmbeddedServices]:
    """A redis-server for this test alone: stopping it stops nobody else's."""
    services = await own_services(service_tmp / "redis", persistent=False, postgres=False)
    try:
        yield services
    finally:
        await services.stop()


async def _forged_post(gw: Running, letter: str, author: Doc[Any]) -> httpx.Response:
    """Mallory, over REST, writes new clocks under `author`'s client id."""
    async with httpx.AsyncClient(base_url=gw.http, timeout=60) as http:
        return await http.post(
            f"/v1/letters/{letter}/updates",
            content=posing_as(author, Doc()),
            headers={
                "Authorization": f"Bearer {gw.token(user='mallory')}",
                "content-type": "application/octet-stream",
            },
        )


@pytest.mark.parametrize("log_read", ["in time", "stuck"])
async def test_an_id_the_letter_has_is_not_claimed_while_redis_is_down(
    redis_of_its_own: EmbeddedServices,
    service_tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
    log_read: str,
) -> None:
    services = redis_of_its_own
    url = services.redis_url
    settings = Settings(data_dir=service_tmp / "steno", redis_url=url, partitions=2)
    redis = aioredis.Redis.from_url(url, socket_timeout=2)
    try:
        async with running_gateway(settings, redis=redis) as gw:
            letter, alice, _bob = await both_logged(gw)
        if log_read == "stuck":  # a long log: the read of the owners does not end in time
            monkeypatch.setattr(loader, "writes", _never_ending)
        async with running_gateway(settings, redis=redis) as gw:  # a new process: nothing known
            carol = await gw.client(letter, user="carol")
            await carol.synced.wait()  # the letter is loaded
            with frozen(services.pids["redis"]):
                answer = await _forged_post(gw, letter, alice.doc)
            if log_read == "stuck":
                assert answer.status_code == 503, answer.text
                assert answer.json() == {"detail": "client id owner unknown"}
                assert answer.headers["Retry-After"] == "1"
            else:
                assert answer.status_code == 403, answer.text
                assert answer.json() == {"detail": "client id not owned"}
            assert await gw.logged_text(letter) == "alice bob "
            # Alice, back, types on under her own id (Redis, up again, knows it is hers).
            alice2 = await YClient.connect(gw.ws_url(letter, gw.token(user="alice")), doc=alice.doc)
            await alice2.synced.wait()
            await alice2.insert("and on")
            await eventually(lambda: logged(gw, letter, "alice bob and on"))
            assert alice2.close_code is None and carol.close_code is None
            await alice2.close()
            await carol.close()
    finally:
        await redis.aclose()


async def _never_ending(*args: Any) -> AsyncIterator[tuple[str, bytes]]:
    """A read of the letter's writers that never yields or ends (a long log)."""
    await asyncio.Event().wait()
    yield ("", b"")  # never reached: makes this an async generator, as loader.writes is
