"""Resolve and reopen a thread, appending nothing for a repeat (each event is an audit row kept
for good): checked against a store folded to the log's end, or against this instance's memory
of its own last flag of the thread (gateway/collab/flagged.py)."""

from typing import Any

from gateway.auth import Claims
from gateway.collab import cold
from gateway.collab.flagged import untouched_since
from gateway.collab.shared import Collab, CollabError
from gateway.collab.stored_threads import find_thread, located
from schemas.events import CommentReopened, CommentResolved, Topic


async def set_resolved(
    collab: Collab, claims: Claims, letter_id: str, thread_id: str, resolved: bool
) -> dict[str, Any]:
    """Resolve or reopen a thread. One already so answers the same and appends nothing (no
    second event, no second audit row), but only when a store folded to the log's end (as
    read after the check began: cold.settled) says so: the projection alone may miss a reopen
    made a moment ago, here while the projector is behind or on another instance, and skipping
    then would drop this resolve. Until the projector has folded this instance's own last resolve
    or reopen of the thread, and while the log holds no change of the thread after it, that is
    what it goes by (gateway/collab/flagged.py): a repeat appends nothing, the opposite appends
    at once. A first read saying otherwise may be Redis' copy from before the log's end (the
    projector down while the snapshotter runs on): a store folded to the end as of now, if any,
    answers, without waiting (the state really differs: appended at once). Otherwise, when no
    store has caught up, the event is appended anyway: the fold makes a repeat harmless, it
    only costs an audit row. A write by another instance after that end read is ordered by the
    log before ours or after it; either is a valid outcome. Check and append go one at a time
    per thread on this instance (other threads of the letter do not wait), and the check waits
    for this instance's last append (`stored_threads.stored`): a double click's second request
    sees the first's event."""
    meta = await collab.letter(claims, letter_id, comment=True)
    flagged = collab.ctx.flagged  # this instance's own, not the process'
    async with flagged.lock(letter_id, thread_id):
        _, thread = await located(collab, letter_id, thread_id)
        ours = await _last(collab, letter_id, thread_id)
        # The first read agreeing, a store at the log's end confirms it (waited for: it may miss
        # a change made a moment ago); disagreeing, it may be a stale copy: asked once.
        agrees = bool(thread.get("resolved")) == resolved
        if ours == resolved or (
            ours is None and await _settled_as(collab, letter_id, thread_id, resolved, agrees)
        ):
            return {"thread_id": thread_id, "resolved": resolved}
        flagged.forget(letter_id, thread_id)
        event = CommentResolved if resolved else CommentReopened
        offset = await collab.append(claims, meta, event(thread_id=thread_id))
        flagged.note(letter_id, thread_id, resolved, offset)
    return {"thread_id": thread_id, "resolved": resolved}


async def _last(collab: Collab, letter_id: str, thread_id: str) -> bool | None:
    """Whether this instance last resolved (True) or reopened (False) the thread, while the
    projector has not folded that record and the log holds no change of the thread after it;
    None if it does not know (it never did, forgot, Redis has it, or the log may say
    otherwise: ask the stores)."""
    flagged, ctx = collab.ctx.flagged, collab.ctx
    known = flagged.recalled(letter_id, thread_id)
    if known is None:
        return None
    resolved, offset = known
    topic = ctx.settings.topic(Topic.LETTERS)
    # Only the projector's fold retires it: the first read is Redis' (PostgreSQL having it while
    # Redis does not, a second click read "open" and asked a store at the log's end, which a
    # co-author's typing keeps from ever being: logged twice).
    if await cold.projected_past(collab, letter_id, offset) or not await untouched_since(
        ctx.log, topic, letter_id, thread_id, offset
    ):
        flagged.forget(letter_id, thread_id)
        return None
    return resolved


async def _settled_as(
    collab: Collab, letter_id: str, thread_id: str, resolved: bool, wait: bool
) -> bool:
    """Whether the thread is `resolved` (or open) in a store folded to the log's end; False
    when none is, within cold.settled's wait if `wait` (or the log cannot tell its end)."""
    try:
        stored = await cold.settled(collab, letter_id, wait)
    except CollabError:
        return False
    thread = find_thread(stored, thread_id)
    return thread is not None and bool(thread.get("resolved")) == resolved
