"""A letter's threads as the API lists them: each anchor resolved against the current document
(offsets follow the text; a thread whose text is gone is `detached`)."""

from typing import Any

from gateway.auth import Claims
from gateway.collab.anchors import Resolved
from gateway.collab.comment_anchors import resolved
from gateway.collab.shared import Collab
from gateway.collab.stored_threads import stored
from schemas.events import Anchor


async def threads(collab: Collab, claims: Claims, letter_id: str) -> dict[str, Any]:
    await collab.letter(claims, letter_id)
    held = await stored(collab, letter_id)
    anchors = [Anchor.model_validate(t["anchor"]) for t in held]
    found = await resolved(collab, letter_id, anchors)
    return {"threads": [_thread_out(*each) for each in zip(held, anchors, found, strict=True)]}


def _thread_out(thread: dict[str, Any], anchor: Anchor, where: Resolved) -> dict[str, Any]:
    detached = where.detached
    return {
        "thread_id": thread["thread_id"],
        "resolved": thread["resolved"],
        "detached": detached,
        "anchor": {
            "from": None if detached else where.start,
            "to": None if detached else where.end,
            "quote": anchor.quote,
            "start": anchor.start,
            "end": anchor.end,
            "after": anchor.after,
            "open_end": where.open_end and not detached,
        },
        "comments": [_comment_out(c) for c in thread["comments"]],
    }


def _comment_out(comment: dict[str, Any]) -> dict[str, Any]:
    keys = ("comment_id", "author", "body", "mentions", "created_at", "edited_at")
    return {k: comment.get(k) for k in keys}
