"""Comment threads: REST endpoints and the operations the app channel shares with them.

Writes validate, convert the anchor (gateway/anchors.py) and append a `comment.*` event; the
projector folds them into `comments:<id>`, the snapshotter into PostgreSQL and the audit (a
deleted comment keeps its tombstone there). Reads wait for the projector to cover this
instance's last append (read-your-writes, bounded) and resolve anchors against the current
document, so offsets follow the text; a thread whose text is gone is `detached`.
"""

import asyncio
import functools
import json
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any, ParamSpec, TypeVar

from cachetools import LRUCache
from fastapi import APIRouter, Depends, Request
from pycrdt import Doc
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.api.responses import AUTHENTICATED, errors
from gateway.api.rest import ClaimsDep
from gateway.auth import Claims
from gateway.collab import cold
from gateway.collab.anchors import (
    AnchorError,
    Resolved,
    range_anchor,
    resolve_all,
    version,
    with_quote,
)
from gateway.collab.flagged import Flagged
from gateway.collab.shared import Collab, CollabError, user_ref
from schemas.events import (
    Anchor,
    CommentCreated,
    CommentDeleted,
    CommentEdited,
    CommentReopened,
    CommentReplied,
    CommentResolved,
)
from schemas.ids import uuid7

MAX_BODY = 10_000  # characters, as the event schema allows

router = APIRouter()

# Anchors are converted off the event loop, on a copy of the document's state: on a long letter
# that takes a second (docs/performance.md). Few threads: the work holds the GIL, and a queue
# here keeps it from filling the default executor others use.
_ANCHORS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="steno-anchors")


P = ParamSpec("P")
T = TypeVar("T")


async def _off_loop(work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    call = functools.partial(work, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_ANCHORS, call)


Version = tuple[str, str, bytes]  # letter id, field, anchors.version of its document
Spot = tuple[str, str, str]  # an anchor's start, end and after: what it resolves from


class Resolutions:
    """Where anchors were found in the letter versions read or commented on last, so that
    reading an unchanged letter's comments again (each comment event has the web client read
    them) costs lookups, not a resolver (a second on a long letter). Used on the event loop
    only. Bounded by the anchors it holds (a few hundred bytes each; a letter has at most
    `max_comments_per_letter` threads)."""

    def __init__(self, max_anchors: int) -> None:
        self._found: LRUCache[Version, dict[Spot, Resolved]] = LRUCache(max_anchors, len)

    def get(self, at: Version, anchors: list[Anchor]) -> list[Resolved] | None:
        """Where all of `anchors` were found at `at`, or None if one was not looked up there."""
        known = self._found.get(at, {})
        try:
            return [known[_spot(a)] for a in anchors]
        except KeyError:
            return None

    def add(self, at: Version, anchors: list[Anchor], found: list[Resolved]) -> None:
        known = {**self._found.get(at, {})}  # a new dict: the cache weighs it as it is stored
        known.update((_spot(a), where) for a, where in zip(anchors, found, strict=True))
        if len(known) <= self._found.maxsize:
            self._found[at] = known


def _spot(anchor: Anchor) -> Spot:
    return anchor.start, anchor.end, anchor.after


_RESOLVED = Resolutions(max_anchors=20_000)


class AnchorIn(BaseModel):
    """Plain-text offsets (`from`, `to`) or Yjs relative positions (`start`, `end`, base64, and
    optionally `after`: see `Anchor`)."""

    model_config = ConfigDict(
        populate_by_name=True,
        extra="forbid",
        # Checked in `_anchor` (with messages that say which pair is missing); told here too.
        json_schema_extra={"oneOf": [{"required": ["from", "to"]}, {"required": ["start", "end"]}]},
    )
    from_: int | None = Field(default=None, alias="from", ge=0)
    to: int | None = Field(default=None, ge=0)
    start: str | None = Field(default=None, max_length=1024)
    end: str | None = Field(default=None, max_length=1024)
    after: str | None = Field(default=None, max_length=1024)


class NewComment(BaseModel):
    # At most MAX_BODY characters, not blank: checked in content(), which answers a long body
    # with 413; the schema only tells.
    body: str = Field(json_schema_extra={"pattern": r"\S", "maxLength": MAX_BODY})
    # User ids, as tokens' `sub` (at most 256 characters, as `UserRef.id`): the letters topic
    # is kept forever, and a longer one names nobody.
    mentions: list[Annotated[str, Field(max_length=256)]] = Field(
        default_factory=list, max_length=50
    )

    def content(self) -> dict[str, Any]:
        """The event's `body` and `mentions` (checked, mentions deduplicated)."""
        if len(self.body) > MAX_BODY:
            raise CollabError(413, f"comment body exceeds {MAX_BODY} characters")
        if not self.body.strip():
            raise CollabError(422, "comment body is empty")
        return {"body": self.body, "mentions": list(dict.fromkeys(u for u in self.mentions if u))}


class NewThread(NewComment):
    anchor: AnchorIn


def parse(model: type[BaseModel], data: Any) -> Any:
    """`data` (a REST body, or an app message's parsed JSON) as `model`, or a 422 naming the field.
    Validated as JSON text, so that a lone surrogate ("\\ud800", valid JSON but not Unicode,
    which json.loads keeps) is refused here rather than by the event it would have become."""
    if isinstance(data, BaseModel):  # checked by FastAPI already, but as Python, not JSON
        data = data.model_dump(mode="json", by_alias=True, exclude_unset=True)
    try:
        return model.model_validate_json(json.dumps(data))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise CollabError(422, f"invalid request: {where}: {first['msg']}") from None


# -- operations (REST and app channel) -------------------------------------------------------


async def create_thread(
    collab: Collab, claims: Claims, letter_id: str, data: Any
) -> dict[str, Any]:
    req: NewThread = parse(NewThread, data)
    meta = await collab.letter(claims, letter_id, comment=True)
    content = req.content()
    _room_for_one_more(collab, await _stored(collab, letter_id, for_cap=True))
    at, (anchor, where) = await _anchor(collab, letter_id, req.anchor)
    thread_id, comment_id = uuid7(), uuid7()
    event = CommentCreated(
        thread_id=thread_id,
        comment_id=comment_id,
        anchor=anchor,
        author=user_ref(claims),
        **content,
    )
    await collab.append(claims, meta, event)
    # The read that follows (the web client's, on the comment event) need not look for it.
    _RESOLVED.add(at, [anchor], [where])
    collab.mentioned(meta, event, claims)
    return {"thread_id": thread_id, "comment_id": comment_id}


async def _anchor(
    collab: Collab, letter_id: str, given: AnchorIn
) -> tuple[Version, tuple[Anchor, Resolved]]:
    """The version of the letter the anchor was made on, the anchor and where it is in it."""
    if given.start is not None and given.end is not None:
        after = given.after or ""
        work = functools.partial(with_quote, start=given.start, end=given.end, after=after)
    elif given.after is not None:
        raise CollabError(422, "anchor's after goes with start and end (from and to make one)")
    elif given.from_ is not None and given.to is not None:
        work = functools.partial(range_anchor, start=given.from_, end=given.to)
    else:
        raise CollabError(422, "anchor needs from and to (or start and end)")
    at, state = await _current(collab, letter_id)
    try:
        return at, await _off_loop(work, state, at[1])
    except AnchorError as exc:
        raise CollabError(422, str(exc)) from None


async def _current(collab: Collab, letter_id: str) -> tuple[Version, bytes]:
    """The letter's current version and its document as one update (for other threads), with
    every edit this instance accepted before the request (positions are the user's)."""
    await collab.logged(letter_id)
    doc = await collab.doc(letter_id)
    return _version(collab, letter_id, doc), doc.get_update()


def _version(collab: Collab, letter_id: str, doc: Doc[Any]) -> Version:
    return letter_id, collab.ctx.settings.doc_field, version(doc)


async def reply(
    collab: Collab, claims: Claims, letter_id: str, thread_id: str, data: Any
) -> dict[str, Any]:
    req: NewComment = parse(NewComment, data)
    meta = await collab.letter(claims, letter_id, comment=True)
    content = req.content()
    stored, _ = await _located(collab, letter_id, thread_id)  # one read for both checks
    _room_for_one_more(collab, stored)
    comment_id = uuid7()
    event = CommentReplied(
        thread_id=thread_id, comment_id=comment_id, author=user_ref(claims), **content
    )
    await collab.append(claims, meta, event)
    collab.mentioned(meta, event, claims)
    return {"comment_id": comment_id}


# (letter id, thread id) -> the lock the thread's resolves and reopens take on this instance
# (gone when unused)
_FLAGGING: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = (
    weakref.WeakValueDictionary()
)
_APPENDED = Flagged()  # this process' last resolve or reopen of each thread, until folded


async def set_resolved(
    collab: Collab, claims: Claims, letter_id: str, thread_id: str, resolved: bool
) -> dict[str, Any]:
    """Resolve or reopen a thread. One already so answers the same and appends nothing (no
    second event, no second audit row), but only when a store folded to the log's end (as
    read after the check began: cold.settled) says so: the projection alone may miss a reopen
    made a moment ago, here while the projector is behind or on another instance, and skipping
    then would drop this resolve. Until a store has folded this instance's own last resolve or
    reopen of the thread, and while the log holds no change of the thread after it, that is
    what it goes by (gateway/collab/flagged.py): a repeat appends nothing, the opposite appends
    at once. Otherwise, when no store has caught up, the event is
    appended anyway: the fold makes a repeat harmless, it only costs an audit row. A write by
    another instance after that end read is ordered by the log before ours or after it; either
    is a valid outcome. Check and append go one at a time per thread on this instance (other
    threads of the letter do not wait), and the check waits for this instance's last append
    (`_stored`): a double click's second request sees the first's event."""
    meta = await collab.letter(claims, letter_id, comment=True)
    flagging = _FLAGGING.setdefault((letter_id, thread_id), asyncio.Lock())
    async with flagging:
        _, thread = await _located(collab, letter_id, thread_id)
        ours = await _APPENDED.last(collab, letter_id, thread_id)
        if ours == resolved or (
            ours is None
            and bool(thread.get("resolved")) == resolved
            and await _settled_as(collab, letter_id, thread_id, resolved)
        ):
            return {"thread_id": thread_id, "resolved": resolved}
        _APPENDED.forget(letter_id, thread_id)
        event = CommentResolved if resolved else CommentReopened
        offset = await collab.append(claims, meta, event(thread_id=thread_id))
        _APPENDED.note(letter_id, thread_id, resolved, offset)
    return {"thread_id": thread_id, "resolved": resolved}


async def _settled_as(collab: Collab, letter_id: str, thread_id: str, resolved: bool) -> bool:
    """Whether the thread is `resolved` (or open) in a store folded to the log's end; False
    when none is within cold.settled's wait (or the log cannot tell its end)."""
    try:
        stored = await cold.settled(collab, letter_id)
    except CollabError:
        return False
    thread = _find_thread(stored, thread_id)
    return thread is not None and bool(thread.get("resolved")) == resolved


async def edit(
    collab: Collab, claims: Claims, letter_id: str, thread_id: str, comment_id: str, data: Any
) -> dict[str, Any]:
    req: NewComment = parse(NewComment, data)
    meta = await collab.letter(claims, letter_id, comment=True)
    content = req.content()
    before = await _own_comment(collab, claims, letter_id, thread_id, comment_id)
    event = CommentEdited(thread_id=thread_id, comment_id=comment_id, **content)
    await collab.append(claims, meta, event)
    collab.mentioned(meta, event, claims, already=before.get("mentions") or ())
    return {"comment_id": comment_id}


async def delete(
    collab: Collab, claims: Claims, letter_id: str, thread_id: str, comment_id: str
) -> dict[str, Any]:
    meta = await collab.letter(claims, letter_id, comment=True)
    await _own_comment(collab, claims, letter_id, thread_id, comment_id)
    await collab.append(claims, meta, CommentDeleted(thread_id=thread_id, comment_id=comment_id))
    return {"comment_id": comment_id, "deleted": True}


async def threads(collab: Collab, claims: Claims, letter_id: str) -> dict[str, Any]:
    await collab.letter(claims, letter_id)
    stored = await _stored(collab, letter_id)
    anchors = [Anchor.model_validate(t["anchor"]) for t in stored]
    found = await _resolved(collab, letter_id, anchors)
    return {"threads": [_thread_out(*each) for each in zip(stored, anchors, found, strict=True)]}


async def _resolved(collab: Collab, letter_id: str, anchors: list[Anchor]) -> list[Resolved]:
    """Where the anchors are in the letter now: as found in this version before, or worked out
    off the event loop."""
    if not anchors:
        return []
    doc = await collab.doc(letter_id)
    at = _version(collab, letter_id, doc)
    found = _RESOLVED.get(at, anchors)
    if found is None:
        found = await _off_loop(resolve_all, doc.get_update(), at[1], anchors)
        _RESOLVED.add(at, anchors, found)
    return found


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


async def _stored(collab: Collab, letter_id: str, for_cap: bool = False) -> list[dict[str, Any]]:
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


def _room_for_one_more(collab: Collab, stored: list[dict[str, Any]]) -> None:
    """Refuse a new comment on a letter that holds the most it may: each comment event rewrites
    the letter's comments in Redis whole, so a letter with no bound slows the projector down for
    every letter. Counted on the projection (it may lag a little behind a burst)."""
    limit = collab.ctx.settings.max_comments_per_letter
    if sum(len(t["comments"]) for t in stored) >= limit:
        raise CollabError(409, f"this letter holds {limit} comments, the most it may")


async def _located(
    collab: Collab, letter_id: str, thread_id: str, comment_id: str | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The letter's threads and the one named, with the comment named if any. One the first
    read lacks may be a moment old, not folded yet (the projector down or behind): then it is
    looked for where the log is folded to its end (cold.settled: 503 if nowhere), and only
    missing there is it unknown (404)."""
    stored = await _stored(collab, letter_id)
    thread = _find_thread(stored, thread_id)
    if collab.ctx.redis is not None and (thread is None or not _has(thread, comment_id)):
        stored = await cold.settled(collab, letter_id)
        thread = _find_thread(stored, thread_id)
    if thread is None:
        raise CollabError(404, "no such thread")
    return stored, thread


def _find_thread(stored: list[dict[str, Any]], thread_id: str) -> dict[str, Any] | None:
    return next((t for t in stored if t["thread_id"] == thread_id), None)


def _has(thread: dict[str, Any], comment_id: str | None) -> bool:
    return comment_id is None or any(c["comment_id"] == comment_id for c in thread["comments"])


async def _own_comment(
    collab: Collab, claims: Claims, letter_id: str, thread_id: str, comment_id: str
) -> dict[str, Any]:
    """The caller's comment as stored; 403 for another author's, 404 for none."""
    _, thread = await _located(collab, letter_id, thread_id, comment_id)
    for comment in thread["comments"]:
        if comment["comment_id"] == comment_id:
            if comment["author"]["id"] != claims.sub:
                raise CollabError(403, "only the author may change a comment")
            return dict(comment)
    raise CollabError(404, "no such comment")


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


@router.post(BASE, status_code=201, responses=WRITE)
async def post_thread(
    letter_id: str, data: NewThread, collab: CollabDep, claims: ClaimsDep
) -> dict[str, Any]:
    return await create_thread(collab, claims, letter_id, data)


@router.post(BASE + "/{thread_id}/replies", status_code=201, responses=WRITE)
async def post_reply(
    letter_id: str, thread_id: str, data: NewComment, collab: CollabDep, claims: ClaimsDep
) -> dict[str, Any]:
    return await reply(collab, claims, letter_id, thread_id, data)


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
