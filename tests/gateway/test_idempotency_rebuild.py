"""`Idempotency-Key` claims after Redis lost them: `letter.created` carries what a claim needs
(its scoped hash, never the caller's key; the request's hash), `backfill locks` writes the
claims back from the log, and the same request again answers the first letter, appending
nothing. Real Redis and the real log."""

import hashlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
import redis.asyncio as aioredis

from eventlog import Log
from gateway.api import idempotency
from schemas import keys
from schemas.events import CreateKey, LetterCreated, Topic
from schemas.keys import restored_idempotency_key
from tests.collab.conftest import unprojected_on
from tests.gateway.harness import Running
from tools.backfill import backfill
from tools.progress import Meter
from tools.sources import Sources

BODY = {"firm_id": "firm-a", "title": "Demand", "content": "Dear Sir,\nPay."}
KEY = "order-7/smith-v-jones"  # a client may put anything in it: not for the log


class Env:
    def __init__(self, gw: Running, redis: aioredis.Redis, http: httpx.AsyncClient) -> None:
        self.gw, self.redis, self.http = gw, redis, http

    async def create(self, body: dict[str, Any] = BODY) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.gw.token(user='u1')}", "Idempotency-Key": KEY}
        return await self.http.post("/v1/letters", json=body, headers=headers)

    async def created(self) -> list[dict[str, Any]]:
        """The value of every `letter.created` in the log (one partition)."""
        log: Log = self.gw.log
        topic, found, offset = self.gw.settings.topic(Topic.LETTERS), [], 0
        while batch := await log.read(topic, 0, offset):
            found += [
                json.loads(r.value) for r in batch if dict(r.headers)["type"] == b"letter.created"
            ]
            offset = batch[-1].offset + 1
        return found

    async def restore(self) -> str:
        """`steno-collab backfill locks` on this log and Redis: its line, timing cut."""
        src = Sources(self.gw.settings, self.gw.log, self.redis)
        [line] = (await backfill(src, "locks", meter=Meter(every_s=3600))).lines
        return re.sub(r" in [0-9.]+ s", "", line)


@pytest_asyncio.fixture(loop_scope="session")
async def env(tmp_path: Path, redis_db: str) -> AsyncIterator[Env]:
    async with unprojected_on(tmp_path, redis_db, partitions=1) as c:
        yield Env(c.gw, c.redis, c.http)


async def test_a_create_repeated_after_a_wipe_and_restore_answers_the_first_letter(
    env: Env,
) -> None:
    first = await env.create()
    assert first.status_code == 201, first.text
    [logged] = await env.created()
    assert KEY not in json.dumps(logged)  # only its hash, scoped to the caller
    claim = keys.idempotency_key("firm-a", "u1", KEY)
    assert logged["idempotency"]["key"] == hashlib.sha256(claim.encode()).hexdigest()

    await env.redis.flushdb()  # the test's database: FLUSHALL, for it
    line = "locks: 0 restored, 0 already held, 0 lapsed; idempotency keys: {}"
    assert await env.restore() == line.format("1 restored, 0 already held, 0 lapsed")

    again = await env.create()
    assert again.status_code == 201, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    other = await env.create({**BODY, "title": "Another"})
    assert other.status_code == 422, other.text
    assert other.json() == {"detail": idempotency.REUSED}
    assert len(await env.created()) == 1  # nothing appended
    # Kept for what was left of the claim's TTL, and never written over: a rerun adds nothing.
    restored = restored_idempotency_key(logged["idempotency"]["key"])
    assert 0 < await env.redis.ttl(restored) <= env.gw.settings.idempotency_ttl_s
    assert await env.restore() == line.format("0 restored, 1 already held, 0 lapsed")


async def test_a_repeat_before_the_restore_waits_for_it(env: Env) -> None:
    """A repeat between the wipe and the restore would make a second letter: 503 until
    `backfill locks` ran (gateway/restored.py), then the first letter."""
    first = await env.create()
    await env.redis.flushdb()
    early = await env.create()
    assert early.status_code == 503, early.text
    assert "steno-collab backfill locks" in early.json()["detail"]
    assert len(await env.created()) == 1  # nothing appended
    await env.restore()
    again = await env.create()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()


async def test_a_claim_whose_ttl_ran_out_by_the_record_is_not_restored(env: Env) -> None:
    logged = CreateKey(key="0" * 64, request="1" * 64)
    assert await idempotency.restore(env.redis, logged, "L1", deadline_ms=1) == -1
    assert await env.redis.exists(restored_idempotency_key(logged.key)) == 0


def test_a_letter_created_before_the_field_still_decodes() -> None:
    old = {"letter_id": "L1", "firm_id": "f", "title": "t", "created_by": "u"}
    assert LetterCreated.model_validate(old).idempotency is None
