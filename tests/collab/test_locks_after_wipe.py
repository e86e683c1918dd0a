"""`GET /v1/letters/{id}/locks` after Redis lost its data: 503 with `Retry-After`, as the grants
answer, while the restored marker is missing or stale, never 200 with no lock (it answered `[]`
until the restore ran, ~10 s, and the web page showed every section free). Real Redis: a
redis-server of the test's own for FLUSHALL, the embedded log, the projector in-process; the
gateway as the app shell composes it, with its own restore watcher or without
(STENO_LOCKS_AUTO_RESTORE=false: `backfill locks` by hand)."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
import redis.asyncio as aioredis

from eventlog.factory import open_log
from gateway import restored
from schemas.keys import RESTORED
from schemas.settings import Settings
from tests.collab.conftest import Collab
from tests.collab.redis_wiped import STALE, rebuild, unrestored
from tests.collab.restore_shell import Site, shell, watcher
from tests.projector.support import projector
from tests.support import eventually, own_services


@pytest_asyncio.fixture(loop_scope="session")
async def site(service_tmp: Path) -> AsyncIterator[Site]:
    """A Redis server of its own (FLUSHALL takes every database: none of another test's)."""
    services = await own_services(service_tmp / "redis", persistent=False, postgres=False)
    settings = Settings(
        data_dir=service_tmp / "steno",
        redis_url=services.redis_url,
        partitions=2,
        database_url=None,
    )
    log = open_log(settings)
    await log.start()
    redis = aioredis.Redis.from_url(services.redis_url)
    try:
        async with projector(settings, log):
            yield Site(settings, log, redis)
    finally:
        await redis.aclose()
        await log.close()
        await services.stop()


def locks_url(lid: str) -> str:
    return f"/v1/letters/{lid}/locks"


async def listing(collab: Collab, lid: str) -> httpx.Response:
    return await collab.call("GET", locks_url(lid), user="bob")


def holders(r: httpx.Response) -> dict[str, str]:
    assert r.status_code == 200, r.text
    locks: list[dict[str, Any]] = r.json()["locks"]
    return {lock["section"]: lock["locked_by"]["id"] for lock in locks}


async def test_a_listing_after_flushall_waits_for_the_restore(site: Site) -> None:
    async with shell(site, locks_auto_restore=False) as collab:
        lid = await collab.gw.create_letter("Intro\nDamages")
        unlocked = await collab.gw.create_letter("Other")
        assert (await collab.call("POST", f"{locks_url(lid)}/intro", user="alice")).is_success
        assert holders(await listing(collab, lid)) == {"intro": "alice"}
        assert holders(await listing(collab, unlocked)) == {}

        await site.redis.flushall()
        unrestored(await listing(collab, lid))  # not [], which showed intro free
        unrestored(await listing(collab, unlocked))  # none listed: none known, either
        unrestored(await collab.call("POST", f"{locks_url(lid)}/damages", user="bob"))  # alike

        assert await rebuild(collab) == "locks: 1 restored, 0 already held, 0 lapsed"
        assert holders(await listing(collab, lid)) == {"intro": "alice"}
        assert holders(await listing(collab, unlocked)) == {}


async def test_a_listing_after_flushall_is_never_empty_while_the_gateway_restores(
    site: Site,
) -> None:
    """With the gateway's own restore (the default): each answer meanwhile is 503 or alice's
    lock, and the first 503 wakes the watcher (its check interval is an hour here)."""
    async with shell(site, check_s=3600) as collab:
        lid = await collab.gw.create_letter("Intro")
        assert (await collab.call("POST", f"{locks_url(lid)}/intro", user="alice")).is_success
        await site.redis.flushall()
        answers: list[httpx.Response] = []

        async def answered() -> bool:
            answers.append(await listing(collab, lid))
            return answers[-1].status_code != 503

        await eventually(answered, interval=0.1)  # within the REST budget (20/s)
        assert len(answers) > 1  # nothing restored it before the listing woke the watcher
        for refused in answers[:-1]:
            unrestored(refused)
        assert holders(answers[-1]) == {"intro": "alice"}  # not [] first
        assert watcher(collab).restores == 1


async def test_a_marker_of_another_redis_process_answers_503(site: Site) -> None:
    """A Redis restarted from an older snapshot brings a stale marker back: its locks may be
    older than the log's, so the listing waits as for a missing marker."""
    async with shell(site, locks_auto_restore=False) as collab:
        lid = await collab.gw.create_letter("Intro")
        assert (await collab.call("POST", f"{locks_url(lid)}/intro", user="alice")).is_success
        assert holders(await listing(collab, lid)) == {"intro": "alice"}
        await site.redis.set(RESTORED, STALE)
        unrestored(await listing(collab, lid))
        await site.redis.set(RESTORED, await restored.run_id(site.redis))
        assert holders(await listing(collab, lid)) == {"intro": "alice"}


async def test_listings_read_the_servers_info_once_not_each_time(site: Site) -> None:
    """The marker is compared with the process last found current (`same`: GET and LASTSAVE),
    as renewals are; INFO (~1 KB) only at the first listing of this gateway."""
    async with shell(site, locks_auto_restore=False) as collab:
        lid = await collab.gw.create_letter("Intro")
        assert (await collab.call("POST", f"{locks_url(lid)}/intro", user="alice")).is_success
        await listing(collab, lid)
        before = await info_calls(site.redis)
        for _ in range(5):
            assert holders(await listing(collab, lid)) == {"intro": "alice"}
        assert await info_calls(site.redis) == before + 1  # our own INFO commandstats


async def info_calls(redis: aioredis.Redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_info", {}).get("calls", 0))
