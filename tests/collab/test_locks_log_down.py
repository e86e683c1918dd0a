"""Section locks when the log refuses the event: the request answers 503 and Redis is left as
if it had not happened, so no lock is held without its `lock.acquired` (or released without
its `lock.released`) and a lapsed lock's `lock.expired` is still logged, once, by whoever
looks next. A 504 (the event may still land) keeps Redis as the request left it. Real Redis
and the real log, wrapped in FaultyLog to fail or hold appends."""

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from eventlog.factory import open_log
from eventlog.records import Entry
from gateway.collab.locks import Locks
from schemas.events import Topic
from schemas.settings import Settings
from tests.gateway.faults import FaultyLog
from tests.gateway.harness import Running, running_gateway, types_of
from tests.projector.support import redis_bytes
from tests.support import eventually


class LateFaultyLog(FaultyLog):
    """Fails appends (while broken) after letting the next `passes` through."""

    passes = 0

    async def append(self, topic: str, key: bytes, entries: Sequence[Entry]) -> list[int]:
        if self.passes:
            self.passes -= 1
            return await self.inner.append(topic, key, entries)
        return await super().append(topic, key, entries)


@dataclass
class Env:
    gw: Running
    log: LateFaultyLog
    redis: aioredis.Redis
    http: httpx.AsyncClient
    letter: str

    @property
    def locks(self) -> Locks:
        locks: Locks = self.gw.app.state.locks
        return locks

    def path(self, section: str = "intro") -> str:
        return f"/v1/letters/{self.letter}/locks/{section}"

    async def call(self, method: str, user: str, path: str | None = None) -> httpx.Response:
        token = self.gw.token(user=user, role="editor", firm="firm-a", name=user.upper())
        headers = {"Authorization": f"Bearer {token}"}
        return await self.http.request(method, path or self.path(), headers=headers)

    async def lock_events(self) -> list[tuple[str, str]]:
        records = await self.gw.records(Topic.LETTERS, self.letter)
        return [
            (kind, json.loads(r.value)["holder"]["id"])
            for kind, r in zip(types_of(records), records, strict=True)
            if kind.startswith("lock.")
        ]


@pytest_asyncio.fixture(loop_scope="session")
async def env(tmp_path: Path, redis_db: str) -> AsyncIterator[Env]:
    settings = Settings(
        data_dir=tmp_path / "steno", redis_url=redis_db, partitions=1, database_url=None
    )
    real = open_log(settings)
    await real.start()
    log = LateFaultyLog(real)
    redis = aioredis.Redis.from_url(redis_db)
    try:
        async with running_gateway(settings, log, redis) as gw:
            async with httpx.AsyncClient(base_url=gw.http, timeout=10) as http:
                letter = await gw.create_letter("Intro\nDamages")
                yield Env(gw, log, redis, http, letter)
    finally:
        await redis.aclose()
        await real.close()


async def test_a_failed_acquisition_leaves_no_lock_and_keeps_the_expiry(env: Env) -> None:
    key = f"lock:{env.letter}:intro"
    assert (await env.call("POST", "alice")).status_code == 200
    await env.redis.delete(key)  # alice's lock timed out, nobody announced it yet
    env.log.broken = True
    r = await env.call("POST", "bob")
    env.log.broken = False
    assert r.status_code == 503
    assert not await env.redis.exists(key)
    after = await env.call("POST", "carol")
    assert after.status_code == 200, after.text
    assert json.loads(redis_bytes(await env.redis.get(key)))["id"] == "carol"
    await env.locks.sweep()  # bob's grant is forgotten: nothing more to announce
    assert await env.lock_events() == [
        ("lock.acquired", "alice"),
        ("lock.expired", "alice"),
        ("lock.acquired", "carol"),
    ]


async def test_an_unlogged_acquisition_after_its_expiry_notice_keeps_one_notice(env: Env) -> None:
    """`lock.expired` got into the log, `lock.acquired` did not: the lock goes, the notice
    is not repeated."""
    key = f"lock:{env.letter}:intro"
    assert (await env.call("POST", "alice")).status_code == 200
    await env.redis.delete(key)
    env.log.broken, env.log.passes = True, 1
    r = await env.call("POST", "bob")
    env.log.broken = False
    assert r.status_code == 503
    assert not await env.redis.exists(key)
    assert await env.redis.hget(f"locks:{env.letter}", "intro") is None
    assert (await env.call("POST", "carol")).status_code == 200
    r = await env.call("GET", "dave", f"/v1/letters/{env.letter}/locks")
    assert [lock["locked_by"]["id"] for lock in r.json()["locks"]] == ["carol"]
    assert await env.lock_events() == [
        ("lock.acquired", "alice"),
        ("lock.expired", "alice"),
        ("lock.acquired", "carol"),
    ]


async def test_an_unlogged_renewal_leaves_the_lock_as_it_was(env: Env) -> None:
    key = f"lock:{env.letter}:intro"
    assert (await env.call("POST", "alice")).status_code == 200
    await env.redis.expire(key, 100)
    before = await env.redis.get(key)
    env.log.broken = True
    r = await env.call("POST", "alice")
    env.log.broken = False
    assert r.status_code == 503
    assert await env.redis.get(key) == before
    assert await env.redis.hget(f"locks:{env.letter}", "intro") == before
    assert 0 < await env.redis.ttl(key) <= 100
    assert (await env.call("POST", "alice")).status_code == 200
    assert await env.redis.ttl(key) > 100
    assert await env.lock_events() == [("lock.acquired", "alice")] * 2


async def test_an_unlogged_release_leaves_the_lock_held(env: Env) -> None:
    key = f"lock:{env.letter}:intro"
    assert (await env.call("POST", "alice")).status_code == 200
    before = await env.redis.get(key)
    env.log.broken = True
    r = await env.call("DELETE", "alice")
    env.log.broken = False
    assert r.status_code == 503
    assert await env.redis.get(key) == before and await env.redis.ttl(key) > 290
    assert await env.redis.hget(f"locks:{env.letter}", "intro") == before
    assert (await env.call("POST", "bob")).status_code == 409  # as the log says: alice's
    assert (await env.call("DELETE", "alice")).status_code == 200
    assert await env.lock_events() == [("lock.acquired", "alice"), ("lock.released", "alice")]


async def test_an_unlogged_expiry_found_by_a_listing_is_logged_by_the_next(env: Env) -> None:
    listing = f"/v1/letters/{env.letter}/locks"
    assert (await env.call("POST", "alice")).status_code == 200
    await env.redis.delete(f"lock:{env.letter}:intro")
    env.log.broken = True
    r = await env.call("GET", "bob", listing)
    env.log.broken = False
    assert r.status_code == 200 and r.json()["locks"] == []
    assert await env.lock_events() == [("lock.acquired", "alice")]
    for _ in range(2):
        assert (await env.call("GET", "bob", listing)).json()["locks"] == []
    assert await env.lock_events() == [("lock.acquired", "alice"), ("lock.expired", "alice")]


async def test_an_unlogged_expiry_found_by_the_sweep_is_logged_by_the_next(env: Env) -> None:
    env.locks.ttl_s = 1
    try:
        assert (await env.call("POST", "alice")).status_code == 200
    finally:
        env.locks.ttl_s = 300

    async def lapsed() -> bool:
        return not await env.redis.exists(f"lock:{env.letter}:intro")

    await eventually(lapsed, timeout=5)  # Redis' own TTL
    env.log.broken = True
    await env.locks.sweep()
    env.log.broken = False
    assert await env.lock_events() == [("lock.acquired", "alice")]
    await env.locks.sweep()
    await env.locks.sweep()
    assert await env.lock_events() == [("lock.acquired", "alice"), ("lock.expired", "alice")]


async def test_an_unlogged_release_of_a_departed_holder_is_retried(env: Env) -> None:
    key, presence = f"lock:{env.letter}:intro", f"presence:{env.letter}"
    await env.redis.hset(presence, "alice", "{}")  # as the projector folds her join
    assert (await env.call("POST", "alice")).status_code == 200
    before = await env.redis.get(key)
    await env.redis.hdel(presence, "alice")  # and her leaving
    env.locks.release_after_leave_s = 0
    try:
        env.log.broken = True
        await env.locks.sweep()
        env.log.broken = False
        assert await env.redis.get(key) == before  # still hers, as the log says
        assert await env.lock_events() == [("lock.acquired", "alice")]
        await env.locks.sweep()
    finally:
        env.locks.release_after_leave_s = 30
    assert not await env.redis.exists(key)
    assert await env.lock_events() == [("lock.acquired", "alice"), ("lock.expired", "alice")]


async def test_an_unconfirmed_grant_stays_as_the_log_will_most_likely_say(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """504 (the log did not confirm in time; a stalled broker takes the event when it wakes):
    Redis keeps the grant, or once the event landed the audit would hold a lock nobody holds,
    never released nor expired. The lock list says what the holder should check."""
    ctx = env.gw.app.state.gateway.ctx
    monkeypatch.setattr(ctx, "settings", ctx.settings.model_copy(update={"append_timeout_s": 0.3}))
    env.log.gate.clear()
    r = await env.call("POST", "bob")
    assert r.status_code == 504, r.text
    assert json.loads(redis_bytes(await env.redis.get(f"lock:{env.letter}:intro")))["id"] == "bob"
    env.log.gate.set()  # it lands after all
    await eventually(lambda: _lock_events_are(env, [("lock.acquired", "bob")]))
    released = await env.call("DELETE", "bob")  # and the holder can let it go, logged
    assert released.status_code == 200, released.text
    assert await env.lock_events() == [("lock.acquired", "bob"), ("lock.released", "bob")]


async def _lock_events_are(env: Env, expected: list[tuple[str, str]]) -> bool:
    return await env.lock_events() == expected
