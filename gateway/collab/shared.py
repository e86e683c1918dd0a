"""What comments, locks and notifications share: access checks, appends, live delivery, reads.

Every change is an event appended to the letter's partition first; local collaborators that
opted into app messages hear it right after the append, collaborators on other instances through
their tail (room.apply_remote). Reads come from the projector's Redis views; `caught_up` gives
read-your-writes by waiting, bounded, until the projector's stored position for the letter
covers this instance's last append for it.
"""

import asyncio
import time
from collections import OrderedDict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from cachetools import LRUCache
from pycrdt import Doc

from eventlog.errors import LogError
from gateway import outgoing
from gateway.access import LetterMeta
from gateway.api.responses import LOG_RETRY_S, LOG_UNAVAILABLE, retry_after
from gateway.auth import Claims
from gateway.live.confirmed import UNCONFIRMED, Unconfirmed, append_confirmed
from gateway.live.presence import stamp
from gateway.service import Gateway
from schemas.envelope import Event
from schemas.events import (
    MODEL_TYPES,
    CommentCreated,
    CommentEdited,
    CommentReplied,
    Payload,
    Topic,
    UserRef,
)
from schemas.keys import ydoc_offset_key
from schemas.outages import Outage

COMMENTERS = frozenset({"editor", "commenter", "service"})
CATCH_UP_S = 2.0  # how long a read waits for the projector before serving what it has
CATCH_UP_POLL_S = 0.02
RECENT_APPENDS_S = 10.0  # how far back a notifications read waits for our appends


class CollabError(Exception):
    """A refused request: an HTTP status, a message, and an optional JSON body."""

    def __init__(
        self,
        status: int,
        detail: str,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {detail}")
        self.status, self.detail, self.body, self.headers = status, detail, body, headers


def log_unavailable() -> CollabError:
    """503 for a collaboration route that needed the log: as `log_unavailable_error` answers a
    REST one (nothing was logged; come back in LOG_RETRY_S)."""
    return CollabError(503, LOG_UNAVAILABLE, headers=retry_after(LOG_RETRY_S))


def iso(ts: float) -> str:
    """Seconds since the epoch as the API writes times: ISO 8601, UTC, with a Z."""
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def user_ref(claims: Claims) -> UserRef:
    return UserRef(**stamp(claims))


def notification_body(
    letter_id: str, event: CommentCreated | CommentReplied | CommentEdited, author: str, name: str
) -> dict[str, Any]:
    return {
        "letter_id": letter_id,
        "thread_id": event.thread_id,
        "comment_id": event.comment_id,
        "author": {"id": author, "name": name},
        "body": event.body,
    }


class Collab:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.ctx = gateway.ctx
        # letter id -> next offset after our last append, for the letters appended to last
        # (bounded: one entry per letter ever commented on would only grow)
        self._appended: LRUCache[str, int] = LRUCache(100_000)
        # letter id -> (when (monotonic), its firm), oldest first: the letters whose
        # notifications we changed (comments, reads) within RECENT_APPENDS_S, pruned as it is
        # written (it grew on an instance nobody read notifications from)
        self._appended_at: OrderedDict[str, tuple[float, str]] = OrderedDict()
        # PostgreSQL's reads for cold letters (gateway/collab/cold.py): one WARNING per outage,
        # not one per request, and one INFO once they work again.
        self.cold_reads = Outage()

    async def letter(self, claims: Claims, letter_id: str, comment: bool = False) -> LetterMeta:
        meta = await self.gateway.access.lookup(letter_id)
        if meta is None or not self.gateway.may_reach(claims, meta):
            raise CollabError(403, "forbidden")
        if comment and claims.role not in COMMENTERS:
            raise CollabError(403, f"role {claims.role} cannot comment")
        return meta

    async def append(self, claims: Claims, meta: LetterMeta, payload: Payload) -> int:
        """Append one event for the letter; tell local collaborators; its offset. 503 when the
        log refused it, 504 when it did not confirm it in time (gateway/live/confirmed.py)."""
        ctx, lid = self.ctx, meta.letter_id
        type_ = MODEL_TYPES[type(payload)].type
        await self.logged(lid)  # after the edits this instance already accepted
        entry = ctx.entry(lid, payload, firm=meta.firm_id, user=claims.sub)
        topic, timeout_s = ctx.settings.topic(Topic.LETTERS), ctx.settings.append_timeout_s
        try:
            offsets = await append_confirmed(
                ctx.log, topic, lid.encode(), [entry], timeout_s, metrics=ctx.metrics
            )
        except Unconfirmed as exc:  # it may still land: a retried comment could show twice
            raise CollabError(504, UNCONFIRMED) from exc
        except LogError as exc:  # refused: nothing logged, a retry is safe
            raise log_unavailable() from exc
        self._appended[lid] = max(self._appended.get(lid, 0), offsets[-1] + 1)
        now = time.monotonic()
        if type_.startswith("comment.") or type_ == "notification.read":
            self._appended_at[lid] = (now, meta.firm_id)
            self._appended_at.move_to_end(lid)
        self._forget_appends(now)
        self.notify_letter(lid, outgoing.app_body(type_, payload, claims.sub))
        return offsets[-1]

    def mentioned(
        self,
        meta: LetterMeta,
        event: CommentCreated | CommentReplied | CommentEdited,
        claims: Claims,
        already: Iterable[str] = (),
    ) -> None:
        """Live notice to mentioned users of the letter's firm connected to any letter on this
        instance; `already`: those the comment mentioned before an edit (notified then)."""
        users = set(event.mentions) - {claims.sub} - set(already)
        if users:
            body = notification_body(meta.letter_id, event, claims.sub, claims.name)
            self.notify_users(users, meta.firm_id, {"type": "notification", **body})

    def remote_comment(self, event: Event) -> None:
        """A comment appended by another instance: its live mention notices for users here."""
        p = event.payload
        if isinstance(p, CommentCreated | CommentReplied):
            author = event.envelope.user
            users = set(p.mentions) - {author}
            if users:
                name = p.author.name if p.author is not None else ""
                body = notification_body(event.letter_id, p, author, name)
                self.notify_users(users, event.envelope.firm, {"type": "notification", **body})

    def notify_letter(self, letter_id: str, body: dict[str, Any]) -> None:
        room = self.gateway.rooms.get(letter_id)
        if room is None:
            return
        message = outgoing.app_message(body)
        for peer in list(room.conns):
            if peer.events:
                peer.send(message, "app")

    def notify_users(self, users: set[str], firm: str, body: dict[str, Any]) -> None:
        """To every opted-in connection of `users` of `firm` on this instance, whatever their
        letter (a user id of another firm names someone who may not read the letter)."""
        message = outgoing.app_message(body)
        for conn in list(self.gateway.conns):
            if conn.events and conn.claims.sub in users and conn.claims.firm_id == firm:
                conn.send(message, "app")

    async def caught_up(self, letter_id: str) -> bool:
        """Wait (bounded) until the projector folded our last append for the letter. False if
        there was none to wait for (what was read before is as fresh as a read now)."""
        return await self._projected([letter_id])

    async def caught_up_all(self, firm: str) -> None:
        """Read-your-writes for views spanning letters (a user's notifications): wait, bounded,
        for the letters of `firm` whose comments this instance changed within the last few
        seconds (a read polled every letter appended to, of any firm, a GET each)."""
        self._forget_appends(time.monotonic())
        await self._projected([lid for lid, (_, of) in self._appended_at.items() if of == firm])

    async def _projected(self, letters: list[str]) -> bool:
        """Until the projector's stored position of each letter covers our last append to it,
        or CATCH_UP_S (then the reader gets what the projector has): one MGET a round. A letter
        without a position that we did not append to lately is cold (its keys expired: they
        come back with its next event), not about to be folded: waiting would only delay it."""
        redis = self.ctx.redis
        self._forget_appends(time.monotonic())
        waiting = [lid for lid in letters if self._appended.get(lid, 0)]
        appended = bool(waiting)
        deadline = time.monotonic() + CATCH_UP_S
        while redis is not None and waiting:
            stored = await redis.mget([ydoc_offset_key(lid) for lid in waiting])
            waiting = [
                lid for lid, at in zip(waiting, stored, strict=True) if self._behind(lid, at)
            ]
            if time.monotonic() >= deadline:
                break
            if waiting:
                await asyncio.sleep(CATCH_UP_POLL_S)
        return appended

    def _behind(self, letter_id: str, stored: bytes | None) -> bool:
        """Whether the projector's position for the letter (`stored`) misses our last append."""
        if stored is None:
            return letter_id in self._appended_at
        return int(stored) < self._appended.get(letter_id, 0)

    def _forget_appends(self, now: float) -> None:
        """Keep the letters appended to within RECENT_APPENDS_S: the others go, oldest first
        (amortised O(1) an append; their offsets stay in `_appended`)."""
        since = now - RECENT_APPENDS_S
        while self._appended_at and next(iter(self._appended_at.values()))[0] < since:
            self._appended_at.popitem(last=False)

    async def logged(self, letter_id: str) -> None:
        """Wait until the edits this instance accepted for the letter are in the log, those a
        failed append left to its rescue too (Rooms.logged): an event appended before them, or
        an anchor worked out on the document without them, would not match what the user saw.
        503 if they are not in the log within the append timeout."""
        if not await self.gateway.rooms.logged(letter_id, self.ctx.settings.append_timeout_s):
            self.ctx.metrics.refuse("log_behind")
            raise CollabError(503, "log behind", headers=retry_after(LOG_RETRY_S))

    async def doc(self, letter_id: str, fresh: bool = True) -> Doc[Any]:
        """The letter's current document, as a REST read has it (not `fresh`: a held letter's
        as this instance has it, not waiting for the log: Gateway.document)."""
        try:
            return await self.gateway.document(letter_id, fresh)
        except LogError as exc:
            raise log_unavailable() from exc
