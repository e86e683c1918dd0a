"""`Idempotency-Key` on `POST .../comments` (a new thread) and `POST .../{thread}/replies`: a
post retried after an answer that never came (a dropped connection, a timed-out proxy) makes
one comment, as a keyed letter create makes one letter.

As `begin_update` (gateway/api/idempotency.py), in the same per-user key space (the key used
before for a letter, an update or another comment route is 422): the claim holds the hash of
the letter, the thread (a reply's) and the parsed body, and the ids the server makes for the new
comment, so that the same request again answers them. Only the claimer appends, so concurrent
repeats make one comment; while it is in flight a repeat answers 409 with Retry-After; once it
is logged the same 201 with `Idempotent-Replayed: true`, appending nothing. Its checks may
outlast the pending claim (a letter no socket holds is rebuilt for the anchor's, unbounded), so
the claim is looked at again just before the append: still its own, renewed (set again if it
lapsed and nobody took it); another's (a repeat took the lapsed key and writes the comment),
409 and nothing appended. A refusal (403, 404, 409 letter full, 413, 422, 503 from the log or
the room) frees the key: nothing was appended. Not confirmed in time (504) or cut off
mid-append: the claim is `unconfirmed`, its ids kept for `STENO_IDEMPOTENCY_TTL_S`, as a
letter create's, with the time it was settled so (`settled_ms`: the claim's own, which putting
it back does not reset as its TTL). A repeat of a claim not settled done looks for its comment
id in the letter's stored threads, and for those of every earlier attempt left unconfirmed
(`tried`: a chain of 504s, any of which may land): one there (it landed late, or the first is
about to answer), its 201 replayed, settled done with its ids, nothing appended; none, 409
while the first is in flight, and for as long after its 504 as a pending claim lives (its
append may still be running: confirmed.py lets it end); past that, a store that has read the
log to its end lacking them all, the repeat takes the claim and writes the comment anew, with
ids of its own (its refusal puts the first's claim back): should an earlier one still land
after that, two comments, the 504's "check before retrying" stands; one the author deleted
before the repeat is written again, as a new comment. Not the first's ids: the projector would
make a comment deleted meanwhile again where PostgreSQL keeps it deleted (the stores would
disagree).
Without Redis a keyed post answers 503, as a keyed letter create does: the guarantee cannot
be given. The claims are in the log as a letter create's (`comment.created` /
`comment.replied` carry `idempotency`: the claim's scoped hash and the request's), and
`backfill locks` (tools/backfill_locks.py) writes them back, settled with the comment's ids,
to a Redis that lost them; until it has, a keyed post answers 503 as a keyed create does (the
marker gate, gateway/restored.py). App channel commands carry no key: their `id` only pairs
an answer with its command on one connection, and the gateway keeps no record of it.
"""

import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Annotated, Any

from fastapi import Header, Response
from pydantic import BaseModel
from redis.exceptions import RedisError

from eventlog.errors import LogError
from gateway.api import idempotency
from gateway.api.idempotency import (
    DONE,
    HEADER,
    IN_PROGRESS,
    KEY_SCHEMA,
    PENDING,
    REPLAYED,
    UNCONFIRMED,
    Claim,
    Gate,
    Ticket,
    digest,
)
from gateway.api.responses import REDIS_RETRY_S, REDIS_UNAVAILABLE, WHY, retry_after
from gateway.auth import Claims
from gateway.collab import cold
from gateway.collab.shared import CATCH_UP_S, Collab, CollabError
from gateway.collab.stored_threads import stored
from schemas.events import CreateKey, Topic
from schemas.settings import Settings

Ids = dict[str, str]
Check = Callable[[], Awaitable[None]]  # before the append: the claim still the request's
# The comment's write: with its ids, the check before its append and the claim its event
# carries (None without a key).
Write = Callable[[Ids, Check | None, CreateKey | None], Awaitable[dict[str, Any]]]
CommentKeyHeader = Annotated[
    str | None,
    Header(
        alias=HEADER,
        description="Makes a retried comment safe: the same request with the same key (per"
        " user, for `STENO_IDEMPOTENCY_TTL_S`) answers the first one's ids once it is stored;"
        " 409 while it may still be on its way (after a 504 too); one never stored, past that,"
        " is written anew.",
        json_schema_extra=KEY_SCHEMA,
    ),
]


def _responses() -> dict[int | str, dict[str, Any]]:
    """A keyed create's answers (201 replayed, 400, 409 in flight, 422 reused); its 409 also
    the route's own (a letter full of comments)."""
    keyed = idempotency.responses(201)
    in_flight = keyed[409]
    keyed[409] = {**in_flight, "description": f"{WHY[409]}; or {in_flight['description']}"}
    return keyed


RESPONSES = _responses()


def answer_within_s(settings: Settings) -> float:
    """How long a comment write takes at most: the wait for this instance's edits to be logged
    and the append (an append timeout each), and the projector wait of its checks."""
    return 2 * settings.append_timeout_s + CATCH_UP_S


async def once(
    collab: Collab,
    claims: Claims,
    header: str | None,
    response: Response,
    letter_id: str,
    thread_id: str | None,
    body: BaseModel,
    ids: Ids,
    write: Write,
) -> dict[str, Any]:
    """`write(ids, ...)` (it answers `ids`), once per `header` for the same request: a new
    thread of `letter_id` (`thread_id` None) or a reply in `thread_id`, with `body`; without a
    header, just the write."""
    if header is None:
        return await write(ids, None, None)
    ctx, comment = collab.ctx, body.model_dump(mode="json", by_alias=True)
    request = {"letter": letter_id, "thread": thread_id, "comment": comment}
    mine = Claim(digest(claims, request), letter_id, PENDING, ids)
    gate = Gate(ctx.log, ctx.settings.topic(Topic.LETTERS), ctx.wake_restore)
    claimed = await idempotency.begin_unlogged(
        ctx.redis, claims, header, mine, ctx.settings.idempotency_ttl_s,
        answer_within_s(ctx.settings), unsettled=True, gate=gate,
    )  # fmt: skip
    if isinstance(claimed, Claim):  # logged by the same request before: its answer again
        response.headers[REPLAYED] = "true"
        return dict(claimed.answer or {})
    pending_s = idempotency.pending_ttl_s(answer_within_s(ctx.settings))
    taken: Claim | None = None  # the first's claim, when this repeat took it (`_repeated`)
    if claimed.claim is not mine:  # the same request's, in flight or not confirmed in time
        taken = claimed.claim
        made = await _repeated(collab, letter_id, claimed, mine, pending_s)
        if made is not None:
            response.headers[REPLAYED] = "true"
            return made
    appending = False

    async def refused() -> None:  # nothing of this request written
        # A repeat's: the first's claim back, unconfirmed, so that its comment, should it land
        # yet, answers a later repeat (re-read RR1: it was dropped).
        await (claimed.put(taken) if taken is not None else claimed.release())

    async def unconfirmed() -> None:  # it may land: a repeat looks for it (`_wait_s`)
        await claimed.put(replace(claimed.claim, state=UNCONFIRMED, settled_ms=_now_ms()))

    async def still_mine() -> None:  # its checks may outlast the claim (a letter rebuilt)
        nonlocal appending
        try:
            kept = await claimed.renew(pending_s)
        except RedisError as exc:
            raise CollabError(503, REDIS_UNAVAILABLE, headers=retry_after(REDIS_RETRY_S)) from exc
        if not kept:  # lapsed, and a repeat took the key: that one writes the comment
            raise CollabError(409, IN_PROGRESS, headers=retry_after(1))
        appending = True

    try:
        answer = await write(ids, still_mine, claimed.logged())
    except CollabError as exc:
        await (unconfirmed() if exc.status == 504 else refused())  # else refused, by the log too
        raise
    except LogError:  # a read its checks needed (its own append's answers as a CollabError)
        await refused()
        raise
    except BaseException:  # cut off (cancelled, Redis failing): mid-append it may land
        await (unconfirmed() if appending else refused())
        raise
    await claimed.settle(DONE)
    return answer


async def _repeated(
    collab: Collab, letter_id: str, held: Ticket, mine: Claim, pending_s: int
) -> dict[str, Any] | None:
    """A repeat of a request whose claim is not settled done: the answer of whichever of its
    attempts' comments is stored (settled done with it now); else None once the claim of one
    not confirmed in time is taken as `mine` (the caller writes the comment anew, with its own
    ids: one reusing the first's would be a comment the folds tell apart, the projector making
    again one deleted meanwhile, PostgreSQL not); 409 while it may still land or another repeat
    took it."""
    first = held.claim
    if first.state == UNCONFIRMED and first.settled_ms is None:  # an older gateway's 504
        first = replace(first, settled_ms=await _settled_by_ttl(held))
    tried = [*(first.tried or []), first.answer or {}]  # every attempt's ids, oldest first
    landed = _landed(await stored(collab, letter_id), tried)
    if landed is None and (wait_s := _wait_s(first, pending_s)) > 0:
        raise CollabError(409, IN_PROGRESS, headers=retry_after(wait_s))
    try:
        if landed is None:  # as a store that read the log to its end holds it (503 if none has)
            landed = _landed(await cold.settled(collab, letter_id), tried)
        if landed is not None:
            await held.put(replace(first, state=DONE, answer=landed, tried=None, settled_ms=None))
            return landed
        if await held.retake(replace(mine, tried=tried), pending_s):
            return None
    except RedisError as exc:
        raise CollabError(503, REDIS_UNAVAILABLE, headers=retry_after(REDIS_RETRY_S)) from exc
    raise CollabError(409, IN_PROGRESS, headers=retry_after(1))  # another repeat took it


def _wait_s(claim: Claim, pending_s: int) -> float:
    """How long before a repeat may write the comment anew: in flight (pending), 1 s at a time;
    not confirmed in time, until its append cannot be running any more (gateway/live/confirmed.py
    lets it end), as long after its 504 as a pending claim lives (re-read RR1: a retry at once
    made a second comment while the first was on its way)."""
    if claim.state != UNCONFIRMED or claim.settled_ms is None:
        return 1.0
    return pending_s - (_now_ms() - claim.settled_ms) / 1000


async def _settled_by_ttl(held: Ticket) -> int:
    """When a claim a gateway older than `settled_ms` left unconfirmed was settled so: it set
    the claim's TTL to `ttl_s` then (read during a rolling upgrade: re-read RR, taken as long
    ago, a repeat wrote the comment anew while the first's append could still be running)."""
    try:
        left_ms = int(await held.redis.pttl(held.key))
    except RedisError as exc:
        raise CollabError(503, REDIS_UNAVAILABLE, headers=retry_after(REDIS_RETRY_S)) from exc
    return _now_ms() - max(0, held.ttl_s * 1000 - max(left_ms, 0))


def _now_ms() -> int:
    # The gateways' clocks (NTP): a skew between two moves a repeat's wait by as much.
    return int(time.time() * 1000)


def _landed(threads: list[dict[str, Any]], tried: list[Ids]) -> Ids | None:
    """The first of `tried` whose comment is in `threads`."""
    held = {c["comment_id"] for t in threads for c in t["comments"]}
    return next((ids for ids in tried if ids.get("comment_id") in held), None)
