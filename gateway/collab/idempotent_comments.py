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
letter create's. A repeat of a claim not settled done looks for its comment id in the letter's
stored threads: there (it landed late, or the first is about to answer), the same 201 replayed,
settled done, nothing appended; missing, 409 while the first is in flight, and for as long
after its 504 as a pending claim lives (its append may still be running: confirmed.py lets it
end); past that, a store that has read the log to its end lacking it, the repeat takes the claim
and writes the comment anew, with ids of its own (its refusal puts the first's claim back):
should the first still land after that, two comments,
the 504's "check before retrying" stands; one the author deleted before the repeat is written
again, as a new comment. Not the first's ids: the projector would make a comment deleted
meanwhile again where PostgreSQL keeps it deleted (the stores would disagree).
Without Redis a keyed post answers 503, as a keyed letter create does: the
guarantee cannot be given. The claims are not in the log: a Redis that lost them lets a repeat
through. App channel commands carry no key: their `id` only pairs an answer with its command
on one connection, and the gateway keeps no record of it.
"""

from collections.abc import Awaitable, Callable
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
    Ticket,
    digest,
)
from gateway.api.responses import REDIS_RETRY_S, REDIS_UNAVAILABLE, WHY, retry_after
from gateway.auth import Claims
from gateway.collab import cold
from gateway.collab.shared import CATCH_UP_S, Collab, CollabError
from gateway.collab.stored_threads import stored
from schemas.settings import Settings

Ids = dict[str, str]
Check = Callable[[], Awaitable[None]]  # before the append: the claim still the request's
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
    write: Callable[[Ids, Check | None], Awaitable[dict[str, Any]]],
) -> dict[str, Any]:
    """`write(ids)` (it answers `ids`), once per `header` for the same request: a new thread of
    `letter_id` (`thread_id` None) or a reply in `thread_id`, with `body`; without a header,
    just the write."""
    if header is None:
        return await write(ids, None)
    ctx, comment = collab.ctx, body.model_dump(mode="json", by_alias=True)
    request = {"letter": letter_id, "thread": thread_id, "comment": comment}
    mine = Claim(digest(claims, request), letter_id, PENDING, ids)
    claimed = await idempotency.begin_unlogged(
        ctx.redis, claims, header, mine, ctx.settings.idempotency_ttl_s,
        answer_within_s(ctx.settings), unsettled=True,
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
        await (claimed.give_back(taken) if taken is not None else claimed.release())

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
        answer = await write(ids, still_mine)
    except CollabError as exc:
        if exc.status == 504:  # it may land: a repeat looks for it
            await claimed.settle(UNCONFIRMED)
        else:  # refused before the append, or by the log: nothing written
            await refused()
        raise
    except LogError:  # a read its checks needed (its own append's answers as a CollabError)
        await refused()
        raise
    except BaseException:  # cut off (cancelled, Redis failing): mid-append it may land
        await (claimed.settle(UNCONFIRMED) if appending else refused())
        raise
    await claimed.settle(DONE)
    return answer


async def _repeated(
    collab: Collab, letter_id: str, held: Ticket, mine: Claim, pending_s: int
) -> dict[str, Any] | None:
    """A repeat of a request whose claim is not settled done: the first's answer if its comment
    is stored (settled done now); else None once the claim of one not confirmed in time is taken
    as `mine` (the caller writes the comment anew, with its own ids: one reusing the first's
    would be a comment the folds tell apart, the projector making again one deleted meanwhile,
    PostgreSQL not); 409 while the first is in flight or another repeat took it."""
    answer = dict(held.claim.answer or {})
    comment_id = answer["comment_id"]
    if _holds(await stored(collab, letter_id), comment_id):
        await held.settle(DONE)
        return answer
    wait_s = 1.0
    try:
        if held.claim.state == UNCONFIRMED:
            # Its append may still be running after the 504 (gateway/live/confirmed.py lets it
            # end): taken only once it cannot be, as long after as a pending claim lives (re-read
            # RR1: a retry at once made a second comment while the first was on its way).
            wait_s = pending_s - await held.settled_s_ago()
            if wait_s <= 0:
                # As a store that read the log to its end holds it (503 if none has yet).
                if collab.ctx.redis is not None:
                    if _holds(await cold.settled(collab, letter_id), comment_id):
                        await held.settle(DONE)
                        return answer
                if await held.retake(mine, pending_s):
                    return None
                wait_s = 1.0  # another repeat took it
    except RedisError as exc:
        raise CollabError(503, REDIS_UNAVAILABLE, headers=retry_after(REDIS_RETRY_S)) from exc
    raise CollabError(409, IN_PROGRESS, headers=retry_after(wait_s))


def _holds(threads: list[dict[str, Any]], comment_id: str) -> bool:
    return any(c["comment_id"] == comment_id for t in threads for c in t["comments"])
