"""Comment threads: REST endpoints, and the operations the app channel shares with them.

The operations live beside this module: a thread's writes (thread_writes.py), resolve and
reopen (resolving.py), listing (thread_listing.py); what they share: the request bodies
(comment_input.py), anchors' placement (comment_anchors.py), the stored threads
(stored_threads.py). Reads wait for the projector to cover this instance's last append
(read-your-writes, bounded) and resolve anchors against the current document, so offsets follow
the text; a thread whose text is gone is `detached`.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from gateway.api.responses import AUTHENTICATED, errors
from gateway.api.rest import ClaimsDep
from gateway.collab import idempotent_comments
from gateway.collab.comment_input import NewComment, NewThread
from gateway.collab.idempotent_comments import Check, CommentKeyHeader, Ids
from gateway.collab.resolving import set_resolved
from gateway.collab.shared import Collab
from gateway.collab.thread_listing import threads
from gateway.collab.thread_writes import create_thread, delete, edit, reply
from schemas.events import CreateKey
from schemas.ids import uuid7

# The operations, for the app channel (channel.py).
__all__ = [
    "CollabDep",
    "create_thread",
    "delete",
    "edit",
    "reply",
    "router",
    "set_resolved",
    "threads",
]

router = APIRouter()


# -- REST --------------------------------------------------------------------------------------


def collab_of(request: Request) -> Collab:
    collab: Collab = request.app.state.collab
    return collab


CollabDep = Annotated[Collab, Depends(collab_of)]
BASE = "/v1/letters/{letter_id}/comments"
# What a comment route may answer besides its result (a new comment also 409 when the letter
# is full, 413 when its body is too long).
CHANGE = errors(*AUTHENTICATED, 404, 503, 504)
WRITE = errors(*AUTHENTICATED, 400, 404, 409, 413, 503, 504)


@router.post(BASE, status_code=201, responses={**WRITE, **idempotent_comments.RESPONSES})
async def post_thread(
    letter_id: str,
    data: NewThread,
    collab: CollabDep,
    claims: ClaimsDep,
    response: Response,
    idempotency_key: CommentKeyHeader = None,
) -> dict[str, Any]:
    """201 `{thread_id, comment_id}` once the comment is in the log. With an `Idempotency-Key`,
    the same request again answers the same ids (idempotent_comments.py)."""
    ids = {"thread_id": uuid7(), "comment_id": uuid7()}

    async def write(made: Ids, check: Check | None, key: CreateKey | None) -> dict[str, Any]:
        return await create_thread(
            collab, claims, letter_id, data, **made, before_append=check, idempotency=key
        )

    return await idempotent_comments.once(
        collab, claims, idempotency_key, response, letter_id, None, data, ids, write
    )


@router.post(
    BASE + "/{thread_id}/replies",
    status_code=201,
    responses={**WRITE, **idempotent_comments.RESPONSES},
)
async def post_reply(
    letter_id: str,
    thread_id: str,
    data: NewComment,
    collab: CollabDep,
    claims: ClaimsDep,
    response: Response,
    idempotency_key: CommentKeyHeader = None,
) -> dict[str, Any]:
    """201 `{comment_id}` once the reply is in the log; with an `Idempotency-Key`, as a thread."""

    async def write(made: Ids, check: Check | None, key: CreateKey | None) -> dict[str, Any]:
        return await reply(
            collab, claims, letter_id, thread_id, data, **made, before_append=check,
            idempotency=key,
        )  # fmt: skip

    ids = {"comment_id": uuid7()}
    return await idempotent_comments.once(
        collab, claims, idempotency_key, response, letter_id, thread_id, data, ids, write
    )


@router.post(BASE + "/{thread_id}/resolve", responses=CHANGE)
async def post_resolve(
    letter_id: str, thread_id: str, collab: CollabDep, claims: ClaimsDep
) -> dict[str, Any]:
    return await set_resolved(collab, claims, letter_id, thread_id, True)


@router.post(BASE + "/{thread_id}/reopen", responses=CHANGE)
async def post_reopen(
    letter_id: str, thread_id: str, collab: CollabDep, claims: ClaimsDep
) -> dict[str, Any]:
    return await set_resolved(collab, claims, letter_id, thread_id, False)


@router.patch(BASE + "/{thread_id}/{comment_id}", responses=WRITE)
async def patch_comment(
    letter_id: str,
    thread_id: str,
    comment_id: str,
    data: NewComment,
    collab: CollabDep,
    claims: ClaimsDep,
) -> dict[str, Any]:
    return await edit(collab, claims, letter_id, thread_id, comment_id, data)


@router.delete(BASE + "/{thread_id}/{comment_id}", responses=CHANGE)
async def delete_comment(
    letter_id: str, thread_id: str, comment_id: str, collab: CollabDep, claims: ClaimsDep
) -> dict[str, Any]:
    return await delete(collab, claims, letter_id, thread_id, comment_id)


@router.get(BASE, responses=errors(*AUTHENTICATED, 503))
async def get_threads(letter_id: str, collab: CollabDep, claims: ClaimsDep) -> dict[str, Any]:
    return await threads(collab, claims, letter_id)
