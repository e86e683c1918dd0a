"""A thread's writes: create (with its anchor), reply, edit and delete a comment. Each
validates, checks against the stored threads and appends a `comment.*` event; the projector
folds it into `comments:<id>`, the snapshotter into PostgreSQL and the audit (a deleted comment
keeps its tombstone there). Resolve and reopen: resolving.py."""

from collections.abc import Awaitable, Callable
from typing import Any

from gateway.auth import Claims
from gateway.collab import comment_anchors
from gateway.collab.comment_input import NewComment, NewThread, parse
from gateway.collab.shared import Collab, user_ref
from gateway.collab.stored_threads import located, own_comment, room_for_one_more, stored
from schemas.events import (
    CommentCreated,
    CommentDeleted,
    CommentEdited,
    CommentReplied,
    CreateKey,
)
from schemas.ids import uuid7


async def create_thread(
    collab: Collab,
    claims: Claims,
    letter_id: str,
    data: Any,
    thread_id: str | None = None,
    comment_id: str | None = None,
    before_append: Callable[[], Awaitable[None]] | None = None,
    idempotency: CreateKey | None = None,
) -> dict[str, Any]:
    """A new thread; its ids are made here unless given (a keyed request's, claimed before,
    whose claim `before_append` checks is still its own and which the event carries as
    `idempotency`, for a Redis that loses it: idempotent_comments.py)."""
    req: NewThread = parse(NewThread, data)
    meta = await collab.letter(claims, letter_id, comment=True)
    content = req.content()
    room_for_one_more(collab, await stored(collab, letter_id, for_cap=True))
    at, (anchor, where) = await comment_anchors.anchor(collab, letter_id, req.anchor)
    thread_id, comment_id = thread_id or uuid7(), comment_id or uuid7()
    event = CommentCreated(
        thread_id=thread_id,
        comment_id=comment_id,
        anchor=anchor,
        author=user_ref(claims),
        idempotency=idempotency,
        **content,
    )
    if before_append is not None:
        await before_append()
    await collab.append(claims, meta, event)
    # The read that follows (the web client's, on the comment event) need not look for it.
    comment_anchors.RESOLVED.add(at, [anchor], [where])
    collab.mentioned(meta, event, claims)
    return {"thread_id": thread_id, "comment_id": comment_id}


async def reply(
    collab: Collab,
    claims: Claims,
    letter_id: str,
    thread_id: str,
    data: Any,
    comment_id: str | None = None,
    before_append: Callable[[], Awaitable[None]] | None = None,
    idempotency: CreateKey | None = None,
) -> dict[str, Any]:
    """A reply; `comment_id`, `before_append` and `idempotency` as `create_thread`'s."""
    req: NewComment = parse(NewComment, data)
    meta = await collab.letter(claims, letter_id, comment=True)
    content = req.content()
    threads, _ = await located(collab, letter_id, thread_id)  # one read for both checks
    room_for_one_more(collab, threads)
    comment_id = comment_id or uuid7()
    event = CommentReplied(
        thread_id=thread_id,
        comment_id=comment_id,
        author=user_ref(claims),
        idempotency=idempotency,
        **content,
    )
    if before_append is not None:
        await before_append()
    await collab.append(claims, meta, event)
    collab.mentioned(meta, event, claims)
    return {"comment_id": comment_id}


async def edit(
    collab: Collab, claims: Claims, letter_id: str, thread_id: str, comment_id: str, data: Any
) -> dict[str, Any]:
    req: NewComment = parse(NewComment, data)
    meta = await collab.letter(claims, letter_id, comment=True)
    content = req.content()
    before = await own_comment(collab, claims, letter_id, thread_id, comment_id)
    event = CommentEdited(thread_id=thread_id, comment_id=comment_id, **content)
    await collab.append(claims, meta, event)
    collab.mentioned(meta, event, claims, already=before.get("mentions") or ())
    return {"comment_id": comment_id}


async def delete(
    collab: Collab, claims: Claims, letter_id: str, thread_id: str, comment_id: str
) -> dict[str, Any]:
    meta = await collab.letter(claims, letter_id, comment=True)
    await own_comment(collab, claims, letter_id, thread_id, comment_id)
    await collab.append(claims, meta, CommentDeleted(thread_id=thread_id, comment_id=comment_id))
    return {"comment_id": comment_id, "deleted": True}
