"""The letter's threads as the stores hold them, for the checks writes make: read after this
instance's last append (read-your-writes, bounded), a thread or comment found by id (looked
for where the log is folded to its end before it is called unknown), the letter's cap."""

from typing import Any

from gateway.auth import Claims
from gateway.collab import cold
from gateway.collab.shared import Collab, CollabError


async def stored(collab: Collab, letter_id: str, for_cap: bool = False) -> list[dict[str, Any]]:
    """The letter's threads as the projector holds them. A letter whose live keys expired (no
    `comments:<id>` and no `ydoc:<id>:offset`, written with the document and expiring with it)
    is cold, not empty: its threads are read from PostgreSQL (gateway/collab/cold.py).
    `for_cap`: only to count them for a new thread; a new thread needs no PostgreSQL (nor the
    projector) where the count cannot be had (the cap is a bound on the projector's work).
    While the projector rebuilds its keys (a reset, a replay after a wipe) they hold part of
    the letter's threads: they are read from PostgreSQL then too."""
    redis = collab.ctx.redis
    if redis is None:
        return []
    held = await cold.projected(collab, letter_id)
    # Read again once the projector has our last append (a rebuild's positions say nothing of
    # it): only if we appended to the letter lately, else that read is as fresh.
    if not held.rebuilding and await collab.caught_up(letter_id):
        held = await cold.projected(collab, letter_id)
    if held.threads is not None:
        return held.threads
    if for_cap and collab.ctx.pg is None:
        return []
    try:
        return await cold.threads(collab, letter_id, held.rebuilding)
    except CollabError:
        if for_cap:
            return []
        raise


def room_for_one_more(collab: Collab, stored: list[dict[str, Any]]) -> None:
    """Refuse a new comment on a letter that holds the most it may: each comment event rewrites
    the letter's comments in Redis whole, so a letter with no bound slows the projector down for
    every letter. Counted on the projection (it may lag a little behind a burst)."""
    limit = collab.ctx.settings.max_comments_per_letter
    if sum(len(t["comments"]) for t in stored) >= limit:
        raise CollabError(409, f"this letter holds {limit} comments, the most it may")


async def located(
    collab: Collab, letter_id: str, thread_id: str, comment_id: str | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The letter's threads and the one named, with the comment named if any. One the first
    read lacks may be a moment old, not folded yet (the projector down or behind): then it is
    looked for where the log is folded to its end (cold.settled: 503 if nowhere), and only
    missing there is it unknown (404)."""
    threads = await stored(collab, letter_id)
    thread = find_thread(threads, thread_id)
    if collab.ctx.redis is not None and (thread is None or not _has(thread, comment_id)):
        threads = await cold.settled(collab, letter_id)
        thread = find_thread(threads, thread_id)
    if thread is None:
        raise CollabError(404, "no such thread")
    return threads, thread


def find_thread(stored: list[dict[str, Any]], thread_id: str) -> dict[str, Any] | None:
    return next((t for t in stored if t["thread_id"] == thread_id), None)


def _has(thread: dict[str, Any], comment_id: str | None) -> bool:
    return comment_id is None or any(c["comment_id"] == comment_id for c in thread["comments"])


async def own_comment(
    collab: Collab, claims: Claims, letter_id: str, thread_id: str, comment_id: str
) -> dict[str, Any]:
    """The caller's comment as stored; 403 for another author's, 404 for none."""
    _, thread = await located(collab, letter_id, thread_id, comment_id)
    for comment in thread["comments"]:
        if comment["comment_id"] == comment_id:
            if comment["author"]["id"] != claims.sub:
                raise CollabError(403, "only the author may change a comment")
            return dict(comment)
    raise CollabError(404, "no such comment")
