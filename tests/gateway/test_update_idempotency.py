"""`Idempotency-Key` on `POST /v1/letters/{id}/updates` (gateway/api/idempotency.py
`begin_update`): a Yjs update retried to another gateway while the first waits for the log is
logged once. Two instances on one Kafka log (Tansu) and one Redis; FaultyLog holds or fails
instance a's appends."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
import redis.asyncio as aioredis
from pycrdt import Doc, Text

from gateway.api.idempotency import IN_PROGRESS, PENDING_SLACK_S, REUSED
from schemas import keys
from schemas.events import Topic
from schemas.settings import Settings
from tests.gateway.faults import FaultyLog, faulty_log
from tests.gateway.harness import Running, running_gateway
from tests.support import eventually

TIMEOUT_S = 5.0  # append_timeout_s: a held append is waited for twice this


@dataclass
class Pair:
    a: Running
    b: Running
    log: FaultyLog  # a's
    redis: aioredis.Redis

    async def post(
        self, gw: Running, letter: str, update: bytes, key: str | None, user: str = "drafter",
        **kw: Any,
    ) -> httpx.Response:  # fmt: skip
        headers = {"Authorization": f"Bearer {gw.token(user=user, **kw)}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        async with httpx.AsyncClient(base_url=gw.http, timeout=30) as http:
            return await http.post(f"/v1/letters/{letter}/updates", content=update, headers=headers)

    async def logged(self, letter: str, update: bytes) -> int:
        """How many records of the letter carry `update`."""
        return sum(r.value == update for r in await self.a.records(Topic.LETTERS, letter))


@pytest_asyncio.fixture(loop_scope="session")
async def pair(tmp_path: Path, kafka_bootstrap: str, redis_db: str) -> AsyncIterator[Pair]:
    prefix = f"t{uuid.uuid4().hex[:8]}."

    def settings(name: str) -> Settings:
        return Settings(data_dir=tmp_path / name, partitions=2, topic_prefix=prefix,
                        log_url=f"kafka://{kafka_bootstrap}", kafka_idempotence=False,
                        redis_url=redis_db, append_timeout_s=TIMEOUT_S)  # fmt: skip

    redis_a, redis_b = aioredis.Redis.from_url(redis_db), aioredis.Redis.from_url(redis_db)
    try:
        async with (
            faulty_log(settings("a")) as log,
            running_gateway(settings("a"), log, redis_a) as a,
            running_gateway(settings("b"), None, redis_b) as b,
        ):
            yield Pair(a, b, log, redis_a)
    finally:
        await redis_a.aclose()
        await redis_b.aclose()


def drafted(text: str) -> bytes:
    doc: Doc[Any] = Doc()
    doc.get("text", type=Text).insert(0, text)
    return doc.get_update()


async def test_a_retry_to_another_gateway_while_the_first_waits_is_logged_once(
    pair: Pair,
) -> None:
    letter = await pair.a.create_letter()
    update = drafted("drafted once")
    pair.log.gate.clear()  # a's append waits in the log: its client gives up and retries on b
    first = asyncio.create_task(pair.post(pair.a, letter, update, "draft-1"))
    await eventually(lambda: pair.log.waiting > 0)
    retry = await pair.post(pair.b, letter, update, "draft-1")
    assert retry.status_code == 409, retry.text
    assert retry.json() == {"detail": IN_PROGRESS} and int(retry.headers["Retry-After"]) >= 1
    pair.log.gate.set()
    made = await first
    assert (made.status_code, made.json()) == (200, {"letter_id": letter, "bytes": len(update)})
    assert "Idempotent-Replayed" not in made.headers
    for gw in (pair.b, pair.a):  # answered again on either instance, nothing logged
        again = await pair.post(gw, letter, update, "draft-1")
        assert (again.status_code, again.json()) == (200, made.json())
        assert again.headers["Idempotent-Replayed"] == "true"
    assert await pair.logged(letter, update) == 1


async def test_the_key_with_another_request_is_422_and_a_refusal_frees_it(pair: Pair) -> None:
    letter, other = await pair.a.create_letter(), await pair.a.create_letter()
    update = drafted("mine")
    assert (await pair.post(pair.a, letter, update, "draft-2")).status_code == 200
    for gw, to, body in ((pair.b, letter, drafted("theirs")), (pair.a, other, update)):
        r = await pair.post(gw, to, body, "draft-2")  # another body, or another letter
        assert (r.status_code, r.json()) == (422, {"detail": REUSED})
    # A refusal before the room takes it writes nothing: the key is free again.
    viewer = await pair.post(pair.b, other, update, "draft-3", role="viewer")
    assert viewer.status_code == 403
    assert await pair.redis.get(keys.idempotency_key("firm-a", "drafter", "draft-3")) is None
    assert (await pair.post(pair.b, other, update, "draft-3")).status_code == 200
    assert await pair.logged(letter, update) == await pair.logged(other, update) == 1


async def test_one_the_log_did_not_confirm_stays_claimed_until_it_lapses(pair: Pair) -> None:
    letter = await pair.a.create_letter()
    update = drafted("maybe")
    pair.log.broken = True  # a's room fails; its rescue appends the update once the log is back
    failed = await pair.post(pair.a, letter, update, "draft-4")
    assert (failed.status_code, failed.json()) == (503, {"detail": "log unavailable"})
    assert failed.headers["Retry-After"] == "1"
    key = keys.idempotency_key("firm-a", "drafter", "draft-4")
    assert 0 < await pair.redis.ttl(key) <= 2 * TIMEOUT_S + PENDING_SLACK_S + 1  # pending
    retry = await pair.post(pair.b, letter, update, "draft-4")
    assert (retry.status_code, retry.json()) == (409, {"detail": IN_PROGRESS})
    pair.log.broken = False
    await eventually(lambda: pair.logged(letter, update), timeout=30)  # rescued
    await pair.redis.delete(key)  # as if it lapsed: the repeat goes through, logging nothing
    again = await pair.post(pair.b, letter, update, "draft-4")
    assert again.status_code == 200 and "Idempotent-Replayed" not in again.headers
    assert await pair.logged(letter, update) == 1


async def test_without_a_key_or_without_redis(pair: Pair, gw: Running) -> None:
    letter = await pair.a.create_letter()
    update = drafted("unkeyed")
    for instance in (pair.a, pair.a):  # one instance: its room trims the repeat
        r = await pair.post(instance, letter, update, None)
        assert r.status_code == 200 and "Idempotent-Replayed" not in r.headers
    assert await pair.logged(letter, update) == 1
    bare = await gw.create_letter()  # `gw` runs without Redis
    r = await pair.post(gw, bare, update, "draft-5")
    assert r.status_code == 503 and "needs Redis" in r.json()["detail"]
    assert (await pair.post(gw, bare, update, "bad key")).status_code == 400
