"""A user's notifications outlive the letters that made them: their hash has its own retention
(`STENO_PROJECTOR_NOTES_TTL_S`), and a letter reloaded after its keys expired brings back no
note the hash has since dropped."""

import json

import redis.asyncio as aioredis

from eventlog import Log
from projector.state import LetterState
from projector.store import Store, Write
from schemas import new_event
from schemas.events import NotificationRead
from schemas.settings import Settings
from tests.projector.support import (
    FIRM,
    OPTIONS,
    append,
    caught_up,
    comment,
    created,
    projector,
    redis_bytes,
)
from tests.support import eventually

BOB = f"notifications:{FIRM}:bob"


async def test_a_mention_outlives_its_letters_keys(
    log: Log, settings: Settings, client: aioredis.Redis
) -> None:
    await append(log, settings, [created("M1"), comment("M1", "t1", "see", mentions=["bob"])])
    retention_ms = 7200 * 1000  # STENO_PROJECTOR_NOTES_TTL_S, as the projector is given it
    options = OPTIONS.model_copy(update={"ttl_s": 1, "notes_ttl_s": retention_ms // 1000})
    async with projector(settings, log, options):
        await caught_up(log, settings, client)
        assert await client.hkeys(BOB) == [b"M1:t1-0"]
        # The letter's keys expire after their TTL; bob's hash keeps its own retention.
        for key in (BOB, f"{BOB}:order"):
            assert retention_ms // 2 < await client.pttl(key) <= retention_ms
        # Expiry is a clock, not an event: poll until the TTL (1 s) has passed.
        await eventually(lambda: _gone(client, "ydoc:M1", "comments:M1"), timeout=10)
    assert await client.hkeys(BOB) == [b"M1:t1-0"]


async def test_a_reload_does_not_bring_back_a_dropped_note(
    log: Log, settings: Settings, client: aioredis.Redis
) -> None:
    await append(log, settings, [created("D1")])
    await append(
        log,
        settings,
        [
            comment("D1", "t1", "old", mentions=["bob"]),
            comment("D1", "t2", "kept", mentions=["bob"]),
        ],
    )
    async with projector(settings, log):
        await caught_up(log, settings, client)
        # The hash's retention (or its cap) dropped t1's note; then the letter's keys expired.
        await client.hdel(BOB, "D1:t1-0")
        await client.zrem(f"{BOB}:order", "D1:t1-0")
        for key in ("ydoc:D1", "ydoc:D1:offset", "projector:letter:D1", "comments:D1"):
            await client.delete(key)
        # Its next event reloads the letter: bob reads both notes, and is mentioned anew.
        read = NotificationRead(comment_ids=["t1-0", "t2-0"])
        await append(log, settings, [new_event("D1", read, firm=FIRM, user="bob")])
        await append(log, settings, [comment("D1", "t3", "new", mentions=["bob"])])
        await caught_up(log, settings, client)
    assert sorted(await client.hkeys(BOB)) == [b"D1:t2-0", b"D1:t3-0"]
    assert json.loads(redis_bytes(await client.hget(BOB, "D1:t2-0")))["read"] is True
    assert json.loads(redis_bytes(await client.hget(BOB, "D1:t3-0")))["read"] is False
    assert await client.zcard(f"{BOB}:order") == 2


async def _gone(client: aioredis.Redis, *keys: str) -> bool:
    return not await client.exists(*keys)


def _noted(body: str, read: bool) -> LetterState:
    state = LetterState("S1", meta={"firm_id": FIRM})
    state.notes["bob:c1"] = {
        "letter_id": "S1",
        "firm_id": FIRM,
        "thread_id": "t1",
        "comment_id": "c1",
        "author": {"id": "u1", "name": "U1"},
        "body": body,
        "created_at": 1,
        "read": read,
    }
    return state


async def test_the_notes_retention_is_the_stores_own_and_refreshed_on_change(
    client: aioredis.Redis,
) -> None:
    store = Store(client, ttl_ms=60_000, notes_ttl_ms=3_600_000)
    first = _noted("hi", read=False)
    assert await store.commit({}, [Write(None, first, 0)]) is None
    assert 60_000 < await client.pttl(BOB) <= 3_600_000
    await client.pexpire(BOB, 10_000)
    await client.pexpire(f"{BOB}:order", 10_000)
    # Read (a reloaded letter: the views before unknown, the note named): rewritten, refreshed.
    read = _noted("hi", read=True)
    notified = frozenset({f"{BOB}\nS1:c1"})
    assert await store.commit({}, [Write(None, read, 0, notified)]) is None
    assert json.loads(redis_bytes(await client.hget(BOB, "S1:c1")))["read"] is True
    assert await client.pttl(BOB) > 60_000 and await client.pttl(f"{BOB}:order") > 60_000
    # Gone from the hash (its retention or its cap): an edit does not bring it back.
    await client.delete(BOB, f"{BOB}:order")
    edited = _noted("edited", read=True)
    assert await store.commit({}, [Write(None, edited, 0, notified)]) is None
    assert not await client.exists(BOB, f"{BOB}:order")
