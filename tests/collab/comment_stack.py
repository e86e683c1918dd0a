"""The stack the comment `Idempotency-Key` tests post to: a gateway whose appends a FaultyLog
holds or fails, the projector on the embedded log, Redis, and an HTTP client."""

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
import redis.asyncio as aioredis

from gateway.api.idempotency import pending_ttl_s
from gateway.collab.idempotent_comments import answer_within_s
from schemas import keys
from schemas.events import Topic
from schemas.settings import Settings
from tests.gateway.faults import FaultyLog, faulty_log
from tests.gateway.harness import Running, running_gateway, types_of
from tests.projector.support import projector

TIMEOUT_S = 2.0  # append_timeout_s: a held append answers 504 after it
TEXT = "Dear Sir,\nWe demand 5000 EUR within 14 days."
THREAD = {"body": "check this", "anchor": {"from": 10, "to": 19}}


@dataclass
class Stack:
    gw: Running
    log: FaultyLog
    redis: aioredis.Redis
    http: httpx.AsyncClient

    async def post(
        self, path: str, body: dict[str, Any], key: str | None, role: str = "editor"
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.gw.token(user='u1', role=role)}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        return await self.http.post(path, json=body, headers=headers)

    async def comments(self, letter: str) -> list[str]:
        """The letter's comment ids, as the listing has them."""
        token = self.gw.token(user="u1")
        r = await self.http.get(
            f"/v1/letters/{letter}/comments", headers={"Authorization": f"Bearer {token}"}
        )
        assert r.status_code == 200, r.text
        return [c["comment_id"] for t in r.json()["threads"] for c in t["comments"]]

    async def logged(self, letter: str) -> list[str]:
        """The letter's comment events in the log."""
        found = types_of(await self.gw.records(Topic.LETTERS, letter))
        return [t for t in found if t.startswith("comment.")]


@pytest_asyncio.fixture(loop_scope="session")
async def stack(tmp_path: Path, redis_db: str) -> AsyncIterator[Stack]:
    settings = Settings(data_dir=tmp_path / "steno", redis_url=redis_db, partitions=2,
                        database_url=None, append_timeout_s=TIMEOUT_S)  # fmt: skip
    redis = aioredis.Redis.from_url(redis_db)
    try:
        async with (
            faulty_log(settings) as log,
            projector(settings, log.inner),
            running_gateway(settings, log, redis) as gw,
            httpx.AsyncClient(base_url=gw.http, timeout=30) as http,
        ):
            yield Stack(gw, log, redis, http)
    finally:
        await redis.aclose()


async def long_ago(stack: Stack, key: str) -> None:
    """The 504 that left `key` unconfirmed was longer ago than a pending claim lives: its
    append cannot be running still (not waited for here: the claim's time moved back)."""
    claim = keys.idempotency_key("firm-a", "u1", key)
    raw = await stack.redis.get(claim)
    assert raw is not None
    held = json.loads(raw)
    held["settled_ms"] -= pending_ttl_s(answer_within_s(stack.gw.settings)) * 1000 + 1000
    await stack.redis.set(claim, json.dumps(held, separators=(",", ":")), keepttl=True)
