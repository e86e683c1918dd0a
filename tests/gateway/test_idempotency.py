"""`Idempotency-Key` on `POST /v1/letters`: the same request with the same key makes one letter,
whatever happened to the first (201, 503, 504, still in flight); the key with another body
never makes a letter of both. Real Redis and the real log (FaultyLog holds or fails appends)."""

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError

import gateway.api.rest as rest
from eventlog.errors import LogUnavailableError
from eventlog.factory import open_log
from gateway.api.idempotency import IN_PROGRESS, INVALID, PENDING_SLACK_S, REUSED, SWAP
from gateway.content import initial_update
from gateway.live.confirmed import UNCONFIRMED
from schemas import keys
from schemas.events import Topic
from schemas.settings import Settings
from tests.gateway.faults import FaultyLog
from tests.gateway.harness import Running, running_gateway
from tests.support import eventually, free_port

TIMEOUT_S = 0.5  # the gateway's append_timeout_s: how long a held append is waited for
BODY = {"firm_id": "firm-a", "title": "Demand", "content": "Dear Sir,\nPay."}


class HeldRedis:
    """The real Redis client; while `gate` is clear, the answers to commands on idempotency
    claims wait at it, so that requests look at their claim at once (a race, on cue)."""

    def __init__(self, inner: aioredis.Redis) -> None:
        self.inner, self.gate, self.waiting = inner, asyncio.Event(), 0
        self.gate.set()
        self.failing_swaps = 0  # settlings of a claim to fail with a connection error

    def __getattr__(self, name: str) -> Any:
        command = getattr(self.inner, name)
        if name not in ("eval", "get", "set"):
            return command

        async def held(*args: Any, **kw: Any) -> Any:
            if name == "eval" and args[0] == SWAP and self.failing_swaps > 0:
                self.failing_swaps -= 1
                raise RedisConnectionError("injected: Redis did not answer")
            answer = await command(*args, **kw)
            if not self.gate.is_set() and any(str(a).startswith("idempotency:") for a in args):
                self.waiting += 1
                try:
                    await self.gate.wait()
                finally:
                    self.waiting -= 1
            return answer

        return held


@dataclass
class Env:
    gw: Running
    log: FaultyLog
    redis: HeldRedis
    http: httpx.AsyncClient

    async def create(
        self, key: str | bytes | None, body: dict[str, Any] = BODY, user: str = "u1", **kw: Any
    ) -> httpx.Response:
        headers = {b"Authorization": f"Bearer {self.gw.token(user=user, **kw)}".encode()}
        if key is not None:
            headers[b"Idempotency-Key"] = key.encode() if isinstance(key, str) else key
        return await self.http.post("/v1/letters", json=body, headers=headers)

    async def created(self) -> list[dict[str, Any]]:
        """Every `letter.created` in the log (one partition), its letter id added."""
        topic = self.gw.settings.topic(Topic.LETTERS)
        found, offset = [], 0
        while batch := await self.gw.log.read(topic, 0, offset):
            found += [
                {**json.loads(r.value), "letter_id": r.key.decode()}
                for r in batch
                if dict(r.headers)["type"] == b"letter.created"
            ]
            offset = batch[-1].offset + 1
        return found

    async def content(self, letter_id: str) -> str:
        r = await self.http.get(
            f"/v1/letters/{letter_id}", headers={"Authorization": f"Bearer {self.gw.token()}"}
        )
        assert r.status_code == 200, r.text
        return str(r.json()["content"])

    async def held(self) -> bool:
        return self.log.waiting == 1


@pytest_asyncio.fixture(loop_scope="session")
async def env(tmp_path: Path, redis_db: str) -> AsyncIterator[Env]:
    settings = Settings(data_dir=tmp_path / "steno", partitions=1, redis_url=redis_db,
                        append_timeout_s=TIMEOUT_S)  # fmt: skip
    real = open_log(settings)
    await real.start()
    log = FaultyLog(real)
    redis = aioredis.Redis.from_url(redis_db)
    held = HeldRedis(redis)
    try:
        async with running_gateway(settings, log, held) as gw:
            async with httpx.AsyncClient(base_url=gw.http, timeout=10) as http:
                yield Env(gw, log, held, http)
    finally:
        log.gate.set()  # a test that failed holding appends: the gateway's drain waits for them
        held.gate.set()
        await redis.aclose()
        await real.close()


async def test_a_repeat_after_201_answers_the_same_letter_and_appends_nothing(env: Env) -> None:
    first = await env.create("order-1")
    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers
    respelled = {"content": BODY["content"], "title": "Demand", "firm_id": "firm-a"}
    for body in (BODY, respelled):
        again = await env.create("order-1", body)
        assert again.status_code == 201, again.text
        assert again.json() == first.json()
        assert again.headers["Idempotent-Replayed"] == "true"
    assert [c["letter_id"] for c in await env.created()] == [first.json()["letter_id"]]


async def test_a_repeat_while_the_first_is_in_flight_is_409_and_one_letter(env: Env) -> None:
    env.log.gate.clear()  # the first create's append waits in the log
    first = asyncio.create_task(env.create("order-2"))
    await eventually(env.held)
    again = await env.create("order-2")
    assert again.status_code == 409, again.text
    assert again.json() == {"detail": IN_PROGRESS}
    assert int(again.headers["Retry-After"]) >= 1
    # Pending, the claim lapses soon after its claimer's append timeout: a claimer that never
    # settles it (a crash, or a claim that reached Redis after its 503) holds the key no longer.
    key = keys.idempotency_key("firm-a", "u1", "order-2")
    assert 0 < await env.redis.inner.ttl(key) <= TIMEOUT_S + PENDING_SLACK_S + 1
    env.log.gate.set()
    made = await first
    assert made.status_code == 201, made.text
    assert await env.redis.inner.ttl(key) > 3600  # settled: kept for idempotency_ttl_s
    later = await env.create("order-2")
    assert later.status_code == 201 and later.json() == made.json()
    assert [c["letter_id"] for c in await env.created()] == [made.json()["letter_id"]]


async def test_one_key_with_several_bodies_at_once_makes_one_letter_of_one_body(
    env: Env,
) -> None:
    bodies = [{**BODY, "title": f"Demand {i}", "content": f"Dear Sir {i},\nPay."} for i in range(3)]
    env.redis.gate.clear()  # every request has looked at its claim before any goes on
    sent = [asyncio.create_task(env.create("order-3", body)) for body in bodies]
    await eventually(lambda: env.redis.waiting == len(bodies))
    env.redis.gate.set()
    answers = await asyncio.gather(*sent)
    codes = [r.status_code for r in answers]
    assert sorted(codes) == [201, 422, 422], [r.text for r in answers]
    assert all(r.json() == {"detail": REUSED} for r in answers if r.status_code == 422)
    won = bodies[codes.index(201)]
    letter_id = answers[codes.index(201)].json()["letter_id"]
    created = await env.created()
    assert [(c["letter_id"], c["title"]) for c in created] == [(letter_id, won["title"])]
    assert await env.content(letter_id) == won["content"]  # that body alone, merged with none
    # A loser repeated after the winner finished: still refused, still one letter.
    assert (await env.create("order-3", bodies[codes.index(422)])).status_code == 422
    assert len(await env.created()) == 1


async def test_a_repeat_after_504_answers_the_letter_once_the_log_has_it(env: Env) -> None:
    env.log.gate.clear()  # the broker stalls: the append is sent, not confirmed
    first = await env.create("order-4")
    assert first.status_code == 504 and first.json() == {"detail": UNCONFIRMED}
    again = await env.create("order-4")  # not landed yet: neither made again nor answered
    assert again.status_code == 409 and again.json() == {"detail": IN_PROGRESS}
    assert int(again.headers["Retry-After"]) >= 1
    env.log.gate.set()  # the broker wakes: the letter lands

    async def answered() -> httpx.Response | None:
        r = await env.create("order-4")
        return r if r.status_code == 201 else None

    later = await eventually(answered)
    assert later.headers["Idempotent-Replayed"] == "true"
    created = await env.created()
    assert [c["letter_id"] for c in created] == [later.json()["letter_id"]]
    assert await env.content(later.json()["letter_id"]) == BODY["content"]


async def test_a_settling_redis_fails_is_tried_again_before_the_claim_lapses(env: Env) -> None:
    """Left pending, the claim of a created letter lapsed (append timeout + 30 s) and a repeat
    of the request made a second letter (a reviewer, with one Redis error at the settling)."""
    env.redis.failing_swaps = 1
    first = await env.create("order-8")
    assert first.status_code == 201, first.text
    key = keys.idempotency_key("firm-a", "u1", "order-8")

    async def settled() -> bool:
        return await env.redis.inner.ttl(key) > 3600  # kept for idempotency_ttl_s

    await eventually(settled)
    again = await env.create("order-8")
    assert again.headers["Idempotent-Replayed"] == "true" and again.json() == first.json()


async def test_a_504_the_log_refuses_afterwards_frees_the_key(env: Env) -> None:
    """Nothing was written after all: the key must not answer 409 for a letter that never
    comes (it did, for the claim's whole TTL: 24 h by default)."""
    env.log.gate.clear()
    first = await env.create("order-7")
    assert first.status_code == 504, first.text
    env.log.broken = True
    env.log.gate.set()  # the held append now ends refused by the log

    async def freed() -> bool:
        return await env.redis.inner.get(keys.idempotency_key("firm-a", "u1", "order-7")) is None

    await eventually(freed)
    env.log.broken = False
    again = await env.create("order-7")
    assert again.status_code == 201, again.text
    assert "Idempotent-Replayed" not in again.headers
    assert [c["letter_id"] for c in await env.created()] == [again.json()["letter_id"]]


def test_a_ttl_shorter_than_an_outage_is_refused() -> None:
    with pytest.raises(ValidationError, match="idempotency_ttl_s"):
        Settings(idempotency_ttl_s=30)  # a 504 landing later would be made again on a retry


async def test_a_repeat_after_503_goes_through(env: Env) -> None:
    env.log.broken = True  # the log refuses: nothing written, the claim is let go
    refused = await env.create("order-5")
    assert refused.status_code == 503, refused.text
    env.log.broken = False
    again = await env.create("order-5")
    assert again.status_code == 201, again.text
    assert "Idempotent-Replayed" not in again.headers
    assert [c["letter_id"] for c in await env.created()] == [again.json()["letter_id"]]


async def test_a_key_is_the_callers_own(env: Env) -> None:
    alice = await env.create("order-6", user="alice")
    bob = await env.create("order-6", user="bob")
    other = {**BODY, "firm_id": "firm-b"}  # user ids are unique only within a firm
    alice_b = await env.create("order-6", other, user="alice", firm="firm-b")
    answers = (alice, bob, alice_b)
    assert [r.status_code for r in answers] == [201, 201, 201], [r.text for r in answers]
    assert not any("Idempotent-Replayed" in r.headers for r in answers)
    assert len({r.json()["letter_id"] for r in answers}) == 3
    assert len(await env.created()) == 3


async def test_a_malformed_key_is_400_and_appends_nothing(env: Env) -> None:
    for key in ("", "two words", "k" * 256, "caf\xe9".encode("latin-1")):
        r = await env.create(key)
        assert r.status_code == 400, (key, r.text)
        assert r.json() == {"detail": INVALID}
    assert await env.created() == []
    widest = "".join(map(chr, range(0x21, 0x7F))) * 3  # 282 visible characters: ':' '%' too
    assert (await env.create(widest[:255])).status_code == 201
    assert (await env.create(widest[:255])).headers["Idempotent-Replayed"] == "true"


async def test_without_redis_a_key_is_503_and_nothing_is_appended(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "steno", partitions=1)
    dead = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}")  # nobody listens
    try:
        for redis in (None, dead):
            async with running_gateway(settings, redis=redis) as gw:
                headers = {"Authorization": f"Bearer {gw.token()}", "Idempotency-Key": "k"}
                async with httpx.AsyncClient(base_url=gw.http, headers=headers) as http:
                    r = await http.post("/v1/letters", json=BODY)
                assert r.status_code == 503, r.text
                assert await gw.log.read(settings.topic(Topic.LETTERS), 0, 0) == []
    finally:
        await dead.aclose()


def test_the_projectors_wipe_spares_the_claims() -> None:
    key = keys.idempotency_key("firm:a", "u:1", "k:1/%")
    assert key == "idempotency:firm%3Aa:u%3A1:k%3A1%2F%25"
    assert not any(fnmatchcase(key, p) for p in keys.LIVE_STATE_PATTERNS)


async def test_a_repeat_builds_nothing_and_pays_nothing(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim comes before the content is built and charged: a retried create answered
    again costs the gateway no build and the user no update bytes (it was built first, then
    claimed: every retry built the content again)."""
    built: list[str] = []

    def counted(content: str, field: str) -> bytes:
        built.append(content)
        return initial_update(content, field)

    monkeypatch.setattr(rest, "initial_update", counted)
    first = await env.create("order-build")
    assert first.status_code == 201, first.text
    bucket = env.gw.app.state.gateway.ctx.update_bytes
    with bucket.held(("firm-a", "u1")) as budget:
        budget.tokens = -1e9  # spent, for long: a new create would be 429
    again = await env.create("order-build")
    assert again.status_code == 201 and again.json() == first.json()
    assert built == [BODY["content"]]


async def test_a_build_queued_past_the_append_time_is_503_and_frees_the_key(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A keyed create's pending claim lapses after the append's time plus its slack: a build
    queued behind others' for longer would let a retry make a second letter. It answers 503
    once the append's time has passed (the claim released), and a retry makes the one letter."""
    builder, release = ThreadPoolExecutor(max_workers=1), threading.Event()
    monkeypatch.setattr(rest, "_BUILDER", builder)
    builder.submit(release.wait, 30)  # another letter's long build holds the builder
    try:
        body = {**BODY, "content": "a" * 70_000}  # over 64 KiB: built in the builder
        waited = await env.create("order-queued", body)
        assert waited.status_code == 503 and waited.json() == {"detail": rest.BUILDING}
        assert waited.headers["retry-after"] == str(rest.BUILD_RETRY_S)
    finally:
        release.set()
    again = await env.create("order-queued", body)
    assert again.status_code == 201, again.text
    assert [c["letter_id"] for c in await env.created()] == [again.json()["letter_id"]]
    builder.shutdown()


async def test_a_repeat_after_504_while_the_log_cannot_be_read_is_409(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The broker still stalled (a read of the letter times out, as against a stopped Kafka
    broker): whether the first landed is unknown, so the repeat answers as while it is in flight
    (409, retry), not 503 'log unavailable' (which tells a caller nothing was written)."""
    env.log.gate.clear()
    first = await env.create("order-stalled")
    assert first.status_code == 504, first.text
    access = env.gw.app.state.gateway.access

    async def stalled(letter_id: str) -> None:
        raise LogUnavailableError("the log did not answer in time")

    monkeypatch.setattr(access, "_find", stalled)
    again = await env.create("order-stalled")
    assert again.status_code == 409 and again.json() == {"detail": IN_PROGRESS}, again.text
    assert int(again.headers["Retry-After"]) >= 1
    env.log.gate.set()


async def test_letter_created_names_its_creator(env: Env) -> None:
    """The initial content is the creator's: the projector names its paragraphs before they
    join (they read "Someone edited paragraph 1")."""
    made = await env.create(None, name="Ann Lee")
    assert made.status_code == 201, made.text
    [created] = await env.created()
    assert (created["created_by"], created["creator_name"]) == ("u1", "Ann Lee")
