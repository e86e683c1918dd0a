"""Notifications are kept per (firm, user): a user id is only unique within its firm, and one
user's hash holds their newest notes whatever the number of letters that mention them."""

import json

import redis.asyncio as aioredis

from eventlog import Log
from schemas import new_event
from schemas.events import NotificationRead
from schemas.settings import Settings
from tests.projector.support import (
    append,
    caught_up,
    comment,
    created,
    projector,
    redis_bytes,
)

USER_NOTES_LIMIT = 500  # per (firm, user), README "Operations"


async def test_a_mention_reaches_the_hash_of_its_firms_user_only(
    log: Log, settings: Settings, client: aioredis.Redis
) -> None:
    firms = {"A1": "firm-a", "B1": "firm-b", "D1": "a:b", "E1": "a"}
    await append(log, settings, [created(lid, firm=firm) for lid, firm in firms.items()])
    await append(
        log,
        settings,
        [
            comment("A1", "t1", "x" * 10_000, mentions=["victim"], firm="firm-a"),
            comment("B1", "t2", "yours", mentions=["victim"], firm="firm-b"),
            # Ids are any text: unescaped, these two users would share `notifications:a:b:c`.
            comment("D1", "t3", "one", mentions=["c"], firm="a:b"),
            comment("E1", "t4", "two", mentions=["b:c"], firm="a"),
        ],
    )
    async with projector(settings, log):
        await caught_up(log, settings, client)
    assert await client.hkeys("notifications:firm-b:victim") == [b"B1:t2-0"]
    assert await client.hkeys("notifications:firm-a:victim") == [b"A1:t1-0"]
    assert await client.hkeys("notifications:a%3Ab:c") == [b"D1:t3-0"]
    assert await client.hkeys("notifications:a:b%3Ac") == [b"E1:t4-0"]
    assert not await client.exists("notifications:victim")  # the key of the user id alone


async def test_a_users_hash_keeps_their_newest_notes_across_letters(
    log: Log, settings: Settings, client: aioredis.Redis
) -> None:
    # Each letter keeps its newest NOTES_LIMIT (500); together they would pass the user's cap.
    per_letter = USER_NOTES_LIMIT * 3 // 5
    await append(log, settings, [created("C1"), created("C2")])
    for lid in ("C1", "C2"):
        mentions = [comment(lid, f"t{i:03}", "hi", mentions=["bob"]) for i in range(per_letter)]
        await append(log, settings, mentions)
    key = "notifications:firm-1:bob"
    async with projector(settings, log):
        await caught_up(log, settings, client)
        assert await client.hlen(key) == USER_NOTES_LIMIT
        dropped = 2 * per_letter - USER_NOTES_LIMIT  # the oldest: C1's first
        kept = {f"C1:t{i:03}-0" for i in range(dropped, per_letter)}
        kept |= {f"C2:t{i:03}-0" for i in range(per_letter)}
        assert {redis_bytes(k).decode() for k in await client.hkeys(key)} == kept
        assert await client.zcard(f"{key}:order") == USER_NOTES_LIMIT

        # Marking read still reaches the hash; a note the cap dropped does not come back.
        read = NotificationRead(comment_ids=["t000-0", f"t{per_letter - 1:03}-0"])
        await append(log, settings, [new_event("C1", read, firm="firm-1", user="bob")])
        await caught_up(log, settings, client)
    note = json.loads(redis_bytes(await client.hget(key, f"C1:t{per_letter - 1:03}-0")))
    assert note["read"] is True
    assert not await client.hexists(key, "C1:t000-0")
    assert await client.hlen(key) == USER_NOTES_LIMIT
