"""The caller's notifications (mentions) and the presence of a letter's collaborators, over REST.

Both read the projector's Redis views. Notifications live in `notifications:<firmId>:<userId>`
(a hash `<letterId>:<commentId>` -> JSON, folded from comment events of the firm's letters that
mention the user; the projector keeps the user's newest 500); marking them read is a user action,
so it is an event (`notification.read`, one per letter, in that letter's partition) which the
projector folds into the same hash.

While the hash may hold part of the log, reads answer 503 with Retry-After (README "While the
projector rebuilds"): a replay or reset is marked (`projector:replays`, the reset marker), or
Redis lost the projector's keys and no replay has begun yet (a partition with records and no
projector position: a wipe while the projector is down; its replay's first commit marks it).
"""

import asyncio
import json
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from eventlog.errors import LogError
from gateway.api.responses import (
    AUTHENTICATED,
    errors,
)
from gateway.api.rest import ClaimsDep
from gateway.auth import Claims
from gateway.collab import cold
from gateway.collab.comment_input import parse
from gateway.collab.comments import CollabDep
from gateway.collab.shared import Collab, CollabError, log_unavailable
from schemas.events import NotificationRead, Topic
from schemas.keys import notes_key, presence_key, projector_position_key
from schemas.rebuilds import PROJECTOR_REPLAYS, PROJECTOR_RESET

LIST_LIMIT = 100
TYPING_MS = 5_000
IDLE_MS = 60_000  # no input for 60 s
AWAY_MS = 300_000  # 5 minutes
REBUILDING = "notifications are being rebuilt in Redis from the log"
# How long a gateway reuses the log's end offsets for `_unfolded`: a partition that never had a
# record has no projector position, ever, so without it every read would ask the log (a broker
# round trip with Kafka). Ends only grow: a cached end > 0 stays true; only a partition's first
# record can go unseen, for this long.
ENDS_TTL_S = 1.0

router = APIRouter()


class MarkRead(BaseModel):
    ids: list[str] = Field(default_factory=list, max_length=500)  # "<letterId>:<commentId>"
    all: bool = Field(default=False, strict=True)


async def notifications(collab: Collab, claims: Claims) -> dict[str, Any]:
    await _not_rebuilding(collab)  # before the wait for the projector: it would be for nothing
    await collab.caught_up_all(claims.firm_id)
    items = await _items(collab, claims)
    unread = sum(1 for item in items if not item.get("read"))
    return {"unread": unread, "notifications": items[:LIST_LIMIT]}


async def _not_rebuilding(collab: Collab) -> None:
    """The markers alone, before waiting for the projector (`_items` asks again, with more)."""
    redis = collab.ctx.redis
    if redis is not None and await redis.exists(PROJECTOR_RESET, PROJECTOR_REPLAYS):
        raise _rebuilding()


def _rebuilding() -> CollabError:
    return CollabError(503, REBUILDING, headers={"Retry-After": cold.REBUILD_RETRY_S})


async def _unfolded(collab: Collab, positions: list[bytes | None]) -> bool:
    """Whether a partition without a projector position has records: the projector has not
    begun folding it since Redis lost its keys (or ever). The log is asked only then: a
    partition that never had a record has no position either."""
    missing = [p for p, at in enumerate(positions) if at is None]
    if not missing:
        return False
    try:
        ends = await _ends(collab, collab.ctx.settings.topic(Topic.LETTERS))
    except LogError as exc:
        raise log_unavailable() from exc
    return any(ends.get(p, 0) > 0 for p in missing)


@dataclass
class _Ends:
    """A gateway's last answer of the log's `end_offsets`, and when it came (monotonic)."""

    topic: str = ""
    at: float = float("-inf")
    ends: dict[int, int] = field(default_factory=dict)
    asking: asyncio.Lock = field(default_factory=asyncio.Lock)  # one question at a time


_ENDS: "weakref.WeakKeyDictionary[Collab, _Ends]" = weakref.WeakKeyDictionary()


async def _ends(collab: Collab, topic: str) -> dict[int, int]:
    """The topic's end offsets, asked of the log at most once per ENDS_TTL_S by this gateway
    (concurrent reads wait for the one question); a failure is not kept."""
    cached = _ENDS.setdefault(collab, _Ends())
    async with cached.asking:
        if cached.topic != topic or time.monotonic() - cached.at >= ENDS_TTL_S:
            ends = await collab.ctx.log.end_offsets(topic)
            cached.topic, cached.at, cached.ends = topic, time.monotonic(), ends
        return cached.ends


async def _items(collab: Collab, claims: Claims) -> list[dict[str, Any]]:
    """The caller's, from letters of their firm only: a comment of another firm may mention
    any user id, and must not reach (nor grow the hash of) a user of another firm who happens
    to have it, so the hash is the firm's user's. 503 while the projector rebuilds its keys."""
    redis = collab.ctx.redis
    if redis is None:
        raise CollabError(503, "notifications need Redis")
    topic = collab.ctx.settings.topic(Topic.LETTERS)
    # The topic's own count: existing topics keep theirs whatever STENO_PARTITIONS says.
    count = await collab.ctx.log.partition_count(topic)
    positions = [projector_position_key(topic, p) for p in range(count)]
    async with redis.pipeline(transaction=True) as pipe:  # the markers with the hash: one read
        pipe.hgetall(notes_key(claims.firm_id, claims.sub))
        pipe.exists(PROJECTOR_RESET, PROJECTOR_REPLAYS)
        pipe.mget(positions)
        raw, marked, at = await pipe.execute()
    if marked or await _unfolded(collab, at):
        # Folded from part of the log, or none of it: some notes missing, read ones unread
        # (README "Notifications"). A user's hash spans the firm's letters, in every partition.
        raise _rebuilding()
    items = [{"id": k.decode(), **json.loads(v)} for k, v in raw.items()]
    return sorted(items, key=lambda item: (item["created_at"], item["comment_id"]), reverse=True)


async def mark_read(collab: Collab, claims: Claims, data: Any) -> dict[str, Any]:
    req: MarkRead = parse(MarkRead, data)
    await _not_rebuilding(collab)
    await collab.caught_up_all(claims.firm_id)
    items = {item["id"]: item for item in await _items(collab, claims)}
    wanted = set(items) if req.all else set(req.ids) & set(items)
    by_letter: dict[str, list[str]] = {}
    for nid in sorted(wanted):
        if not items[nid].get("read"):
            by_letter.setdefault(items[nid]["letter_id"], []).append(items[nid]["comment_id"])
    for letter_id, comment_ids in by_letter.items():
        meta = await collab.letter(claims, letter_id)
        await collab.append(claims, meta, NotificationRead(comment_ids=comment_ids))
        await collab.caught_up(letter_id)
    return {"marked": sum(len(ids) for ids in by_letter.values())}


async def presence(collab: Collab, claims: Claims, letter_id: str) -> dict[str, Any]:
    await collab.letter(claims, letter_id)
    redis = collab.ctx.redis
    if redis is None:
        raise CollabError(503, "presence needs Redis")
    raw = await redis.hgetall(presence_key(letter_id))
    now = int(time.time() * 1000)
    users = [_user(k.decode(), json.loads(v), now) for k, v in sorted(raw.items())]
    return {"users": users}


def _user(user_id: str, entry: dict[str, Any], now_ms: int) -> dict[str, Any]:
    last = int(entry.get("lastActivity") or 0)
    return {
        "id": user_id,
        "name": entry.get("name", ""),
        "color": entry.get("color", ""),
        "status": status_of(entry.get("status"), last, now_ms),
        "lastActivity": last,
        "cursor": entry.get("cursor"),
    }


def status_of(reported: Any, last_ms: int, now_ms: int) -> str:
    """The projector folds a status as of the last event; age it by the wall clock here.
    A client-reported "away" (tab hidden) stands; anything else decays with inactivity."""
    age = now_ms - last_ms
    if reported == "away" or age >= AWAY_MS:
        return "away"
    if age >= IDLE_MS:
        return "idle"
    if reported == "typing" and age < TYPING_MS:
        return "typing"
    return "active"


@router.get("/v1/notifications", responses=errors(*AUTHENTICATED, 503))
async def get_notifications(collab: CollabDep, claims: ClaimsDep) -> dict[str, Any]:
    return await notifications(collab, claims)


@router.post("/v1/notifications/read", responses=errors(*AUTHENTICATED, 400, 503, 504))
async def post_read(data: MarkRead, collab: CollabDep, claims: ClaimsDep) -> dict[str, Any]:
    return await mark_read(collab, claims, data)


@router.get("/v1/letters/{letter_id}/presence", responses=errors(*AUTHENTICATED, 503))
async def get_presence(letter_id: str, collab: CollabDep, claims: ClaimsDep) -> dict[str, Any]:
    return await presence(collab, claims, letter_id)
