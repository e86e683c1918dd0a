"""A site of one log, one Redis and the projector where gateway instances start and stop at will:
locks handed over, swept and released when their holder's gateway dies."""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis

from eventlog.factory import open_log
from eventlog.records import Log
from gateway.collab.locks import Locks
from gateway.service import Gateway
from projector.settings import ProjectorSettings
from schemas.events import Topic
from schemas.keys import attending_key
from schemas.settings import Settings
from tests.collab.channel_helpers import app, seen
from tests.gateway.harness import Running, YClient, running_gateway, types_of
from tests.projector.support import OPTIONS, projector, redis_bytes
from tests.support import eventually

AFTER_S = 1.0  # lock_release_after_leave_s, small
REAPED = OPTIONS.model_copy(update={"stale_after_s": 0.3})  # a dead gateway's sessions, soon
UNREAPED = OPTIONS.model_copy(update={"stale_after_s": 3600.0})


@dataclass
class Site:
    """One log, one Redis, the projector; gateway instances started and stopped at will."""

    settings: Settings
    log: Log
    redis: aioredis.Redis
    stack: AsyncExitStack

    async def gateway(self) -> tuple[Running, AsyncExitStack]:
        own = AsyncExitStack()
        running = await own.enter_async_context(
            running_gateway(self.settings, self.log, self.redis)
        )
        self.stack.push_async_callback(own.aclose)  # closed at the end, if not before
        return running, own

    async def present(self, letter_id: str, user: str) -> bool:
        return bool(await self.redis.hexists(f"presence:{letter_id}", user))

    async def held(self, letter_id: str, section: str) -> bool:
        return bool(await self.redis.exists(f"lock:{letter_id}:{section}"))


@asynccontextmanager
async def open_site(
    tmp_path: Path,
    redis_db: str,
    options: ProjectorSettings,
    folding: AsyncExitStack | None = None,
) -> AsyncIterator[Site]:
    """Two-gateway site on one log and Redis; its projector runs in `folding` when given (for a
    test to stop it: closed last, after the gateways, if still up)."""
    settings = Settings(
        data_dir=tmp_path / "steno", redis_url=redis_db, partitions=2, database_url=None,
        lock_release_after_leave_s=AFTER_S,
    )  # fmt: skip
    log = open_log(settings)
    await log.start()
    redis = aioredis.Redis.from_url(redis_db)
    try:
        async with AsyncExitStack() as stack:
            if folding is None:
                await stack.enter_async_context(projector(settings, log, options))
            else:
                stack.push_async_callback(folding.aclose)
                await folding.enter_async_context(projector(settings, log, options))
            yield Site(settings, log, redis, stack)
    finally:
        await redis.aclose()
        await log.close()


def locks_of(gateway: Running) -> Locks:
    locks: Locks = gateway.app.state.locks
    return locks


async def swept_away(site: Site, gateway: Running, letter_id: str, holder: str) -> None:
    """`gateway`'s sweeps release `holder`'s lock of "intro" (within 10 s), with one
    `lock.expired` after its `lock.acquired`."""

    async def released() -> bool:
        await locks_of(gateway).sweep()
        return not await site.held(letter_id, "intro")

    await eventually(released, timeout=10)
    assert await lock_events(gateway, letter_id) == [
        ("lock.acquired", "intro", holder),
        ("lock.expired", "intro", holder),
    ]


async def lock_events(gateway: Running, letter_id: str) -> list[tuple[str, str, str]]:
    records = await gateway.records(Topic.LETTERS, letter_id)
    return [
        (kind, json.loads(r.value)["section"], json.loads(r.value)["holder"]["id"])
        for kind, r in zip(types_of(records), records, strict=True)
        if kind.startswith("lock.")
    ]


async def back_through(site: Site, a: Running, b: Running, lid: str) -> tuple[YClient, str]:
    """Carol's gateway `a` dies and her client reconnects through `b`, after `b`'s sweep has
    started the count of her lock's absence (its `away` key, returned with her client)."""
    await die(a)
    away = f"locks:{lid}:away"
    await locks_of(b).sweep()
    assert await site.redis.hexists(away, "intro")  # only on dead A: the count started
    again = await b.client(lid, user="carol")
    await again.synced.wait()
    return again, away


async def connections_on(site: Site, gateway: Running, letter_id: str) -> int:
    """How many of the letter's connections the projector has recorded on `gateway`."""
    gateway_id = gateway.app.state.gateway.ctx.gateway_id.encode()
    conns = await site.redis.smembers(f"letter:{letter_id}:connections")
    found = [
        await site.redis.hget(f"connection:{redis_bytes(c).decode()}", "gateway") for c in conns
    ]
    return found.count(gateway_id)


async def carol_locks_on(site: Site, a: Running, lid: str) -> None:
    carol = await a.client(lid, user="carol", events=1)
    await carol.synced.wait()
    await eventually(lambda: site.present(lid, "carol"))
    await carol.ws.send(app({"type": "lock.acquire", "id": "l1", "section": "intro"}))
    assert (await seen(carol, "result", id="l1"))["result"]["holder"]["id"] == "carol"


async def die(gateway: Running) -> None:
    """What a kill -9 leaves behind, in-process: the instance stops refreshing its heartbeat
    (the key lapses) and its vouches for its connections (they lapse with it: gateway/live/
    attendance.py), stops sweeping locks, and logs no session.left for its connections."""
    service: Gateway = gateway.app.state.gateway
    assert service._alive is not None
    service._alive.cancel()
    await asyncio.gather(service._alive, return_exceptions=True)
    service._alive = None
    await service.attendance.close()  # nothing pending: its members stay, as a kill leaves them
    await locks_of(gateway).close()
    redis, gateway_id = service.ctx.redis, service.ctx.gateway_id
    await redis.delete(f"gateway:{gateway_id}:alive")
    async for key in redis.scan_iter(match=attending_key("*")):  # its vouches, as Redis has them
        mine = [m for m in await redis.zrange(key, 0, -1) if json.loads(m)[1] == gateway_id]
        if mine:  # their time passed, as the heartbeat's
            await redis.zadd(key, dict.fromkeys(mine, 0), xx=True)
