"""A real Redis restart from a snapshot (redis-server of its own, SAVEd, stopped, started on the
same dump.rdb): the marker it loads names the process that saved it, the very process a gateway
last found it naming, so a renewal's or release's check (`restored.SAME`, no INFO) must tell the
two apart by more than the marker: the new process's LASTSAVE (its start)."""

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
import redis.asyncio as aioredis

from gateway import restored
from gateway.collab import lock_scripts as scripts
from schemas.keys import RESTORED
from steno_collab.embedded import EmbeddedRedis
from tests.support import eventually

KEY, INDEX = "lock:L:A", "locks:L"


@pytest_asyncio.fixture(loop_scope="session")
async def server(service_tmp: Path) -> AsyncIterator[EmbeddedRedis]:
    redis = EmbeddedRedis(service_tmp, persistent=False)
    await redis.start()
    try:
        yield redis
    finally:
        await redis.stop()


def alices(expires_at: float, n: str) -> str:
    return json.dumps({"id": "alice", "name": "A", "expires_at": expires_at, "n": n})


async def past(redis: aioredis.Redis, second: int) -> bool:
    """Redis' clock is past `second` by a whole second: LASTSAVE reads Redis' cached clock, which
    may still say the second before for a moment after TIME has moved on (failed in CI)."""
    now, _ = await redis.time()
    return int(now) > second + 1


async def renew(redis: aioredis.Redis, current: str, seen: restored.Seen) -> int:
    keys = (KEY, INDEX, scripts.DUE, RESTORED)
    args = (current, alices(2e9, "renewed"), 300, "A", 420_000, *seen.args())
    return int(await redis.eval(scripts.RENEW, len(keys), *keys, *args))


async def release(redis: aioredis.Redis, current: str, seen: restored.Seen) -> int:
    keys = (KEY, INDEX, RESTORED)
    return int(await redis.eval(scripts.RELEASE, len(keys), *keys, current, "A", *seen.args()))


async def test_a_restart_from_a_snapshot_is_told_from_the_process_that_saved_it(
    server: EmbeddedRedis,
) -> None:
    redis = aioredis.Redis.from_url(server.url)
    try:
        before = await restored.run_id(redis)
        await redis.set(RESTORED, before)  # restored by that process
        held = alices(2e9, "1")
        await redis.set(KEY, held, ex=300)
        await redis.hset(INDEX, "A", held)
        await redis.save()
        seen = await restored.seen(redis)
        assert seen is not None and seen.run_id == before
        assert await renew(redis, held, restored.Seen()) == scripts.UNMARKED  # never looked
        assert await release(redis, held, seen) > 0  # current: released
        await redis.set(KEY, held, ex=300)  # taken again after the save: lost by the restart
        await redis.hset(INDEX, "A", held)

        # A restart within the save's second is the one LASTSAVE cannot tell (a harmless one:
        # the new process loads that very save, unless another file was put in its place).
        await eventually(lambda: past(redis, seen.saved))
        await redis.aclose()
        await server.stop()
        redis = aioredis.Redis.from_url(await server.start())
        assert await restored.run_id(redis) != before
        assert await redis.get(RESTORED) == before.encode()  # the snapshot's marker
        assert await renew(redis, held, seen) == scripts.UNMARKED
        assert await release(redis, held, seen) == scripts.UNMARKED
        assert await redis.get(KEY) == held.encode()  # untouched
        assert await restored.seen(redis) is None  # looked again: stale, 503
    finally:
        await redis.aclose()


async def test_a_save_or_debug_reload_makes_one_more_look(server: EmbeddedRedis) -> None:
    """The same process (DEBUG RELOAD keeps its run_id): LASTSAVE moved, so the check fails
    once, and the look (one INFO) finds the marker current: renewed."""
    redis = aioredis.Redis.from_url(server.url)
    try:
        await redis.set(RESTORED, await restored.run_id(redis))
        held = alices(2e9, "1")
        await redis.set(KEY, held, ex=300)
        seen = await restored.seen(redis)
        assert seen is not None

        await eventually(lambda: past(redis, seen.saved))
        await redis.execute_command("DEBUG", "RELOAD")  # saves, then loads that save
        assert await renew(redis, held, seen) == scripts.UNMARKED
        again = await restored.seen(redis)
        assert again is not None and again.run_id == seen.run_id
        assert await renew(redis, held, again) > 0
    finally:
        await redis.aclose()
