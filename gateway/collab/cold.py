"""The comment threads of a cold letter, read from the snapshotter's tables in PostgreSQL.

The projector's `comments:<id>` expires with the letter's other live keys (a day without
activity) and comes back only when a new event of the letter is folded. Until then the durable
projection is the snapshotter's `comment_threads` / `comments`, which follow the same rule (a
thread is live while one of its comments is not deleted: README "Races"). This module shapes
them as the projector's JSON, so reads, replies, resolves, edits, deletes and the per-letter cap
work the same on a cold letter. Two things PostgreSQL does not hold are taken from the audit
trail in the same database: the author's name (the `author` of the comment's own event, else
the name of the author's last session before it, as the projector falls back to) and the log
order of a thread's comments. Times are the log's record times (the projector's are the
gateway's stamps, a few milliseconds earlier).

`settled` serves a write naming a thread or comment the first read lacks: from whichever store
has folded the letter's partition to the log's end (README "Projector behind").
"""

import asyncio
import datetime as dt
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple, TypeVar

import asyncpg

from eventlog.errors import LogError
from gateway.collab import shared
from gateway.collab.shared import Collab, CollabError, log_unavailable
from schemas.events import Topic
from schemas.instants import EPOCH, MS
from schemas.keys import comments_key, projector_position_key, ydoc_offset_key
from schemas.rebuilds import (
    PROJECTOR_REPLAYS,
    PROJECTOR_RESET,
    replay_field,
    snapshotter_position,
    snapshotter_rebuilding,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRY_S = "5"  # PostgreSQL down or not given: the letter's keys come back at its next event
REBUILD_RETRY_S = "30"  # a rebuild folds the whole log: minutes, not seconds
SNAPSHOTTER_POLL_S = 0.05
PROJECTOR_REBUILT = "comments are being rebuilt in Redis from the log"
BEHIND = "comments are behind the log"


# Live comments of live threads, each with its creating event's log offset and author name.
# One pass over the letter's comment audit rows (not one per comment: a letter holds up to
# `max_comments_per_letter` comments, and many more audit rows).
_THREADS = """
WITH made AS (
  SELECT DISTINCT ON (change_data->>'comment_id') change_data->>'comment_id' AS comment_id,
         log_offset, NULLIF(change_data->'author'->>'name', '') AS name
  FROM collaboration
  WHERE letter_id = $1 AND change_type IN ('comment.created', 'comment.replied')
  ORDER BY change_data->>'comment_id', log_offset
)
SELECT t.thread_id, t.anchor, t.status, t.created_by, t.created_at AS thread_at,
       c.comment_id, c.author_id, c.body, c.mentions, c.created_at, c.edited_at,
       m.log_offset, m.name
FROM comment_threads t
JOIN comments c ON c.thread_id = t.thread_id AND c.letter_id = t.letter_id
  AND c.deleted_at IS NULL
LEFT JOIN made m ON m.comment_id = c.comment_id
WHERE t.letter_id = $1
ORDER BY t.created_at, t.thread_id, m.log_offset NULLS LAST, c.created_at, c.comment_id
"""
# The sessions' names, for comments whose event names no author (made before `author`).
_SESSIONS = """
SELECT user_id, log_offset, change_data->>'name' AS name FROM collaboration
WHERE letter_id = $1 AND change_type = 'session-start' ORDER BY log_offset
"""

READABLE_AGAIN = "comments of cold letters readable again after %s"


async def threads(collab: Collab, letter_id: str, rebuilding: bool = False) -> list[dict[str, Any]]:
    """The letter's threads as `comments:<id>` held them; 503 with Retry-After when
    PostgreSQL is not given, does not answer, or is being rebuilt (a partial list would look
    like the whole one). `rebuilding`: the projector's keys are (`projected`); then the tables
    must hold what the log held when the request came (a reply to a thread made a moment ago
    elsewhere is no 404), else 503 too."""
    pg = collab.ctx.pg
    if pg is None:
        if rebuilding:
            raise _unavailable(PROJECTOR_REBUILT, REBUILD_RETRY_S)
        if (held := await _projected(collab, letter_id)) is not None:
            return held
        raise _unavailable("comments of a letter idle this long need PostgreSQL", RETRY_S)
    topic = collab.ctx.settings.topic(Topic.LETTERS)
    partition = collab.ctx.log.partition_for(topic, letter_id.encode())
    try:
        caught_up = not rebuilding or await _snapshotted(collab, pg, topic, partition)
        rows = await pg.fetch(_THREADS, letter_id)
        names = await _session_names(pg, letter_id, rows)
        # Asked after the read: a read that saw the tables emptied or part-filled ended after
        # the marker was written with the emptying (tools/rest.py does the same).
        rebuilt = await snapshotter_rebuilding(pg, topic, partition)
    except LogError as exc:  # the partition's end, asked while the projector rebuilds
        raise log_unavailable() from exc
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        collab.cold_reads.failed(log, "comments of cold letter %s unreadable: %r", letter_id, exc)
        raise _unavailable("comments unavailable (PostgreSQL)", RETRY_S) from exc
    collab.cold_reads.recovered(log, READABLE_AGAIN, unit="failure")
    if rebuilt:
        raise _unavailable("comments are being rebuilt from the log", REBUILD_RETRY_S)
    if not caught_up:
        raise _unavailable(f"{PROJECTOR_REBUILT}; PostgreSQL is behind the log", RETRY_S)
    return shape(rows, names)


async def _snapshotted(collab: Collab, pg: Any, topic: str, partition: int) -> bool:
    """Whether the snapshotter has committed the partition up to its end as of now, waiting
    at most CATCH_UP_S: read-your-writes (and others' writes) on the tables. It commits every
    batch, so this is its lag, well under a second while it keeps up."""
    end = (await collab.ctx.log.end_offsets(topic)).get(partition, 0)

    async def folded() -> bool | None:
        return await _snapshotter_at(pg, topic, partition) >= end or None

    return await _polled(folded, SNAPSHOTTER_POLL_S) is not None


async def _projected(collab: Collab, letter_id: str) -> list[dict[str, Any]] | None:
    """The threads once the projector has the letter, waiting at most CATCH_UP_S; None if it
    does not. A letter it has not reached yet (just created) looks cold too: with PostgreSQL
    its tables say so (no threads), without it only the projector can."""
    if collab.ctx.redis is None:
        return None

    async def held_now() -> list[dict[str, Any]] | None:
        held = await projected(collab, letter_id)
        if held.rebuilding:
            raise _unavailable(PROJECTOR_REBUILT, REBUILD_RETRY_S)
        return held.threads

    return await _polled(held_now, shared.CATCH_UP_POLL_S)


async def _polled(check: Callable[[], Awaitable[T | None]], poll_s: float) -> T | None:
    """The first answer of `check` other than None, asked every `poll_s` until CATCH_UP_S has
    passed (then None)."""
    deadline = time.monotonic() + shared.CATCH_UP_S
    while (found := await check()) is None:
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(poll_s)
    return found


async def _snapshotter_at(pg: Any, topic: str, partition: int) -> int:
    """The snapshotter's committed position in the partition (0 before its first commit)."""
    return await snapshotter_position(pg, topic, partition) or 0


async def settled(collab: Collab, letter_id: str, wait: bool = True) -> list[dict[str, Any]]:
    """The letter's threads from a store that has folded its partition up to the log's end as
    of now: for a write naming a thread or comment the first read did not find, which may be
    one made a moment ago while the projector is down or behind (a restart, a rebalance). Redis
    if the projector's position has reached that end and it holds the letter, else PostgreSQL
    once the snapshotter's has, waiting for either at most CATCH_UP_S (`wait`; else asked once);
    else 503 with Retry-After: neither can tell that the thread does not exist."""
    pg, redis = collab.ctx.pg, collab.ctx.redis
    topic = collab.ctx.settings.topic(Topic.LETTERS)
    partition = collab.ctx.log.partition_for(topic, letter_id.encode())
    try:
        end = (await collab.ctx.log.end_offsets(topic)).get(partition, 0)
    except LogError as exc:
        raise log_unavailable() from exc

    async def folded() -> list[dict[str, Any]] | None:
        nonlocal pg
        if redis is not None:
            # None also if Redis holds no keys of the letter (they expired: PostgreSQL has them).
            held, at = await _redis_held(collab, letter_id, topic, partition)
            if held.threads is not None and at is not None and at >= end:
                return held.threads
        if pg is not None:
            try:
                at_pg = await _snapshotter_at(pg, topic, partition)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                collab.cold_reads.failed(log, "snapshotter position unreadable: %r", exc)
                pg = None  # the projector may still catch up
            else:
                collab.cold_reads.recovered(log, READABLE_AGAIN, unit="failure")
                if at_pg >= end:  # rows commit with the position: a later read has them
                    return await threads(collab, letter_id)
        return None

    found = await (_polled(folded, SNAPSHOTTER_POLL_S) if wait else folded())
    if found is None:
        raise _unavailable(BEHIND, RETRY_S)
    return found


async def projected_past(collab: Collab, letter_id: str, offset: int) -> bool:
    """Whether the projector has folded the letter's record at `offset` (its position in the
    partition is past it), asked once, without waiting; False without Redis or a position."""
    if collab.ctx.redis is None:
        return False
    topic = collab.ctx.settings.topic(Topic.LETTERS)
    partition = collab.ctx.log.partition_for(topic, letter_id.encode())
    at = await collab.ctx.redis.get(projector_position_key(topic, partition))
    return at is not None and int(at) > offset


class Projected(NamedTuple):
    """What Redis holds of a letter's threads: `threads` None when it holds none, or when
    `rebuilding` (a replay or reset of the projector's keys is under way: the state there may
    be folded from part of the log, `ydoc:<id>:offset` an intermediate position)."""

    threads: list[dict[str, Any]] | None
    rebuilding: bool


async def projected(collab: Collab, letter_id: str) -> Projected:
    """The threads the projector holds for the letter: `[]` for a letter it folded without
    any (`ydoc:<id>:offset` and no `comments:<id>`), None for a cold one (neither key). Read
    with the markers in one transaction: a replay's first commit writes its marker with its
    state (projector/store.py)."""
    topic = collab.ctx.settings.topic(Topic.LETTERS)
    partition = collab.ctx.log.partition_for(topic, letter_id.encode())
    held, _ = await _redis_held(collab, letter_id, topic, partition)
    return held


async def _redis_held(
    collab: Collab, letter_id: str, topic: str, partition: int
) -> tuple[Projected, int | None]:
    """`projected`, and the projector's position in the partition (None before its first
    commit), read in one transaction."""
    async with collab.ctx.redis.pipeline(transaction=True) as pipe:
        keys = [comments_key(letter_id), ydoc_offset_key(letter_id), PROJECTOR_RESET]
        pipe.mget([*keys, projector_position_key(topic, partition)])
        pipe.hexists(PROJECTOR_REPLAYS, replay_field(topic, partition))
        (found, folded, reset, at), replaying = await pipe.execute()
    position = None if at is None else int(at)
    if reset is not None or replaying:
        return Projected(None, True), position
    return Projected(_held(found, folded), False), position


def _held(found: bytes | None, folded: bytes | None) -> list[dict[str, Any]] | None:
    if found is not None:
        stored = json.loads(found)
        return stored if isinstance(stored, list) else []
    return [] if folded is not None else None


def _unavailable(detail: str, retry_s: str) -> CollabError:
    return CollabError(503, detail, headers={"Retry-After": retry_s})


async def _session_names(
    pg: Any, letter_id: str, rows: Sequence[asyncpg.Record]
) -> list[tuple[str, int, str]]:
    """(user, offset, name) of the letter's sessions, if a comment needs one for its author."""
    if all(r["name"] is not None for r in rows):
        return []
    found = await pg.fetch(_SESSIONS, letter_id)
    return [(r["user_id"], r["log_offset"], r["name"] or "") for r in found]


def shape(rows: Sequence[Any], sessions: Sequence[tuple[str, int, str]]) -> list[dict[str, Any]]:
    """Rows of `_THREADS` (in its order) as the projector's JSON (projector/fold.py)."""
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        thread = out.get(r["thread_id"])
        if thread is None:
            thread = out[r["thread_id"]] = {
                "thread_id": r["thread_id"],
                "anchor": json.loads(r["anchor"]),
                "resolved": r["status"] == "resolved",
                "created_by": r["created_by"],
                "created_at": _ms(r["thread_at"]),
                "comments": [],
            }
        name = r["name"]
        if name is None:
            name = _last_name(sessions, r["author_id"], r["log_offset"])
        thread["comments"].append(
            {
                "comment_id": r["comment_id"],
                "author": {"id": r["author_id"], "name": name},
                "body": r["body"],
                "mentions": json.loads(r["mentions"]),
                "created_at": _ms(r["created_at"]),
                "edited_at": None if r["edited_at"] is None else _ms(r["edited_at"]),
            }
        )
    return list(out.values())


def _last_name(sessions: Sequence[tuple[str, int, str]], user: str, before: int | None) -> str:
    """The name `user` last joined the letter under before offset `before` (all: None)."""
    names = [n for u, at, n in sessions if u == user and (before is None or at < before)]
    return names[-1] if names else ""


def _ms(at: dt.datetime) -> int:
    return (at - EPOCH) // MS
