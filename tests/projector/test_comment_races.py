"""Comment events racing gateways logged (README "Comments", "Races"): once a thread's last
comment is deleted, replies, edits, resolves and reopens to it are void, and void events notify
nobody; `comments:<id>` and the notifications hold what the log's order leaves."""

import json

import redis.asyncio as aioredis

from eventlog import Log
from schemas.settings import Settings
from tests.comment_races import RACES_LIVE, RACES_NOTES, races
from tests.projector.support import append, caught_up, projector, redis_bytes


async def test_racing_comment_events_fold_to_what_the_log_order_leaves(
    log: Log, settings: Settings, client: aioredis.Redis
) -> None:
    await append(log, settings, races("R1"))
    async with projector(settings, log):
        await caught_up(log, settings, client)
    threads = json.loads(redis_bytes(await client.get("comments:R1")))
    live = {
        t["thread_id"]: (
            t["resolved"],
            [(c["comment_id"], c["author"]["id"], c["body"]) for c in t["comments"]],
        )
        for t in threads
    }
    assert live == RACES_LIVE
    t5 = next(t for t in threads if t["thread_id"] == "t5")
    assert t5["anchor"]["quote"] == "quote of c6" and t5["created_by"] == "bob"  # anew
    notes = set()
    for user in ("alice", "bob", "carol", "dave"):
        for letter_comment in await client.hkeys(f"notifications:firm-1:{user}"):
            letter, cid = redis_bytes(letter_comment).decode().split(":")
            assert letter == "R1"
            notes.add((user, cid))
    assert notes == RACES_NOTES
    stored = json.loads(redis_bytes(await client.get("projector:letter:R1")))
    assert sorted(stored["notes"]) == sorted(f"{u}:{c}" for u, c in RACES_NOTES)
