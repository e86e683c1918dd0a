"""Where a thread's anchor is: made on the letter's current document when the thread is
created (gateway/collab/anchors.py converts it), found again in the version a read sees, so
that offsets follow the text. The work runs off the event loop; where anchors were found is
remembered per version of the letter."""

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from cachetools import LRUCache
from pycrdt import Doc

from gateway.collab.anchors import (
    AnchorError,
    Resolved,
    range_anchor,
    resolve_all,
    version,
    with_quote,
)
from gateway.collab.comment_input import AnchorIn
from gateway.collab.shared import Collab, CollabError
from schemas.events import Anchor

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


RESOLVED = Resolutions(max_anchors=20_000)


async def anchor(
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


async def resolved(collab: Collab, letter_id: str, anchors: list[Anchor]) -> list[Resolved]:
    """Where the anchors are in the letter now: as found in this version before, or worked out
    off the event loop."""
    if not anchors:
        return []
    # Positions only, for a listing: not waiting for other instances' writes (a stalled log
    # would make every listing of a held letter wait, then 503); a thread's text is PostgreSQL's.
    doc = await collab.doc(letter_id, fresh=False)
    at = _version(collab, letter_id, doc)
    found = RESOLVED.get(at, anchors)
    if found is None:
        found = await _off_loop(resolve_all, doc.get_update(), at[1], anchors)
        RESOLVED.add(at, anchors, found)
    return found
