"""The WebSocket app channel: comment and lock commands from opted-in clients, and notices.

Clients that connected with `&events=1` send y-protocol messages of type 100 whose body is JSON
`{"type": "comment.create", "id": "<their request id>", ...}`; each command runs the same
operation as its REST endpoint and is answered with `{"type": "result", "id", "result"}` or
`{"type": "error", "id", "status", "detail"}`, `status` as the REST route's (503: the log refused
the command, nothing changed; 504: the log did not confirm it in time, it may still take effect,
so a client looks before it sends it again). The events it causes reach every collaborator
(gateway/collab.py). Two notices come from here too:
- `typing` from a client becomes `{"type": "typing", "user"}` for the letter's other clients
  on this instance, at most once per `TYPING_DEBOUNCE_S` per user (other instances show the
  awareness `status: typing` the client sets as well);
- `section.edited` follows the projector's `recent:<id>` (paragraph -> who edited it last):
  a poller compares it for the letters held here and tells their clients what changed.
`{"type": "auth.renew", "id", "token"}` renews the connection's own token in place: a later
token of the same user, firm and role, checked as at the handshake, and the connection is not
closed (4401) until it expires; answered with `{"expires_at"}` or an error (401, 403, 429).
Every other command is charged to the user's REST request budget (`rest_requests_*`), as the
same operation over REST is: over it, the error has status 429 and `retry_after` (seconds).
"""

import asyncio
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from cachetools import TTLCache

from gateway import outgoing
from gateway.collab import comments
from gateway.collab.locks import Locks
from gateway.collab.shared import Collab, CollabError, iso, user_ref
from gateway.live.room import Peer, Room
from schemas.keys import recent_key

log = logging.getLogger(__name__)
TYPING_DEBOUNCE_S = 2.0
RECENT_POLL_S = 1.0
RECENT_FRESH_S = 5.0
# Commands of one connection served at once. Each is a task, and a read may wait up to 2 s for
# the projector, polling Redis: at the frame rate (200/s) one connection could otherwise keep
# hundreds of them polling. A client waits for its replies; the web client sends one at a time.
MAX_IN_FLIGHT = 8

Op = Callable[[Collab, Locks, Any, str, dict[str, Any]], Awaitable[dict[str, Any]]]


def _s(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if value is None or value == "":
        raise CollabError(422, f"{key} is required")
    if not isinstance(value, str):
        raise CollabError(422, f"{key} must be a string")
    return value


OPS: dict[str, Op] = {
    "comment.create": lambda c, lk, cl, lid, d: comments.create_thread(c, cl, lid, d),
    "comment.reply": lambda c, lk, cl, lid, d: comments.reply(c, cl, lid, _s(d, "thread_id"), d),
    "comment.resolve": lambda c, lk, cl, lid, d: comments.set_resolved(
        c, cl, lid, _s(d, "thread_id"), True
    ),
    "comment.reopen": lambda c, lk, cl, lid, d: comments.set_resolved(
        c, cl, lid, _s(d, "thread_id"), False
    ),
    "comment.edit": lambda c, lk, cl, lid, d: comments.edit(
        c, cl, lid, _s(d, "thread_id"), _s(d, "comment_id"), d
    ),
    "comment.delete": lambda c, lk, cl, lid, d: comments.delete(
        c, cl, lid, _s(d, "thread_id"), _s(d, "comment_id")
    ),
    "comment.list": lambda c, lk, cl, lid, d: comments.threads(c, cl, lid),
    "lock.acquire": lambda c, lk, cl, lid, d: lk.acquire(cl, lid, _s(d, "section")),
    "lock.release": lambda c, lk, cl, lid, d: lk.release(cl, lid, _s(d, "section")),
}
COMMAND_FIELDS = ("body", "anchor", "mentions")


class AppChannel:
    def __init__(self, collab: Collab, locks: Locks) -> None:
        self.collab, self.locks = collab, locks
        self._running: dict[Peer, set[asyncio.Task[None]]] = {}  # commands, by connection
        # (letter, user) -> noticed within the debounce; bounded, as every letter ever opened
        # would otherwise keep an entry for each of its typists.
        self._typing: TTLCache[tuple[str, str], bool] = TTLCache(10_000, TYPING_DEBOUNCE_S)
        self._recent: dict[str, dict[str, str]] = {}  # held letters with listeners only
        self._poller: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.collab.ctx.redis is not None:
            self._poller = asyncio.create_task(self._poll_recent())

    async def close(self) -> None:
        tasks = [t for running in self._running.values() for t in running]
        tasks += [self._poller] if self._poller else []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def receive(self, conn: Peer, room: Room, body: bytes) -> None:
        """One app message from an opted-in client (called by the connection, synchronously)."""
        try:
            data = json.loads(body)
        except ValueError:
            return _reply(conn, {"type": "error", "status": 422, "detail": "malformed JSON"})
        if not isinstance(data, dict):
            return _reply(conn, {"type": "error", "status": 422, "detail": "expected an object"})
        kind = data.get("type")
        if kind == "typing":
            return self._typing_notice(conn, room)
        request = data.get("id")
        if len(self._running.get(conn, ())) >= MAX_IN_FLIGHT:
            detail = f"more than {MAX_IN_FLIGHT} commands in flight"
            return _reply(conn, {"type": "error", "id": request, "status": 429, "detail": detail})
        # auth.renew is charged to the handshake budget instead (gateway/live/session.py).
        wait = None if kind == "auth.renew" else self._over_budget(conn)
        if wait is not None:
            retry = max(1, math.ceil(wait))
            over = {"status": 429, "detail": "too many requests", "retry_after": retry}
            return _reply(conn, {"type": "error", "id": request, **over})
        running = self._running.setdefault(conn, set())
        task = asyncio.create_task(self._run(conn, room.letter_id, str(kind), data))
        running.add(task)
        task.add_done_callback(lambda done: self._finished(conn, done))

    def _over_budget(self, conn: Peer) -> float | None:
        """None if the command may run (one request taken), else the seconds until it may."""
        ctx = self.collab.ctx
        wait = ctx.budget(ctx.rest_requests, conn.claims)  # service tokens: no budget
        if wait is not None:
            ctx.metrics.refuse("app_rate_limited")
        return wait

    def _finished(self, conn: Peer, task: asyncio.Task[None]) -> None:
        running = self._running[conn]
        running.discard(task)
        if not running:
            del self._running[conn]

    async def _run(self, conn: Peer, letter_id: str, kind: str, data: dict[str, Any]) -> None:
        request = data.get("id")
        op = OPS.get(kind)
        try:
            if kind == "auth.renew":
                result = await _renew(conn, data)
            elif op is None:
                raise CollabError(422, f"unknown command {kind!r}")
            else:
                result = await op(self.collab, self.locks, conn.claims, letter_id, data)
        except CollabError as exc:
            body = {"status": exc.status, "detail": exc.detail, **(exc.body or {})}
            return _reply(conn, {"type": "error", "id": request, **body})
        except Exception as exc:  # one bad command must not take the connection down
            log.warning("app command %s failed: %r", kind, exc)
            return _reply(conn, {"type": "error", "id": request, "status": 500, "detail": "error"})
        _reply(conn, {"type": "result", "id": request, "result": result})

    def _typing_notice(self, conn: Peer, room: Room) -> None:
        key = (room.letter_id, conn.claims.sub)
        if key in self._typing:
            return
        self._typing[key] = True
        message = outgoing.app_message(
            {"type": "typing", "user": user_ref(conn.claims).model_dump()}
        )
        for peer in list(room.conns):
            if peer.events and peer.claims.sub != conn.claims.sub:
                peer.send(message, "app")

    async def _poll_recent(self) -> None:
        while True:
            await asyncio.sleep(RECENT_POLL_S)
            try:
                await self.recent_once()
            except Exception as exc:  # Redis down: next round
                log.warning("recent-edits poll failed: %r", exc)

    async def recent_once(self) -> None:
        """Tell each held letter's clients which sections changed hands since the last look."""
        redis = self.collab.ctx.redis
        looked: dict[str, dict[str, str]] = {}
        for room in self.collab.gateway.rooms:
            if not any(peer.events for peer in room.conns):
                continue
            raw = await redis.hgetall(recent_key(room.letter_id))
            now = looked[room.letter_id] = {k.decode(): v.decode() for k, v in raw.items()}
            before = self._recent.get(room.letter_id)
            fresh_ms = (time.time() - RECENT_FRESH_S) * 1000
            for section, value in sorted(now.items()):
                edit = json.loads(value)
                # First look at a letter: announce only what is fresh, not its whole history.
                if before is None and edit.get("at", 0) < fresh_ms:
                    continue
                if before is None or before.get(section) != value:
                    user = {"id": edit.get("userId"), "name": edit.get("name", "")}
                    body = {"type": "section.edited", "section": section, "user": user}
                    self.collab.notify_letter(room.letter_id, {**body, "at": edit.get("at")})
        self._recent = looked  # a letter unloaded or left by its listeners is forgotten


RENEWAL_REFUSED = {
    "renewal_unauthorized": 401,
    "renewal_other_identity": 403,
    "renewal_rate_limited": 429,
}


async def _renew(conn: Peer, data: dict[str, Any]) -> dict[str, Any]:
    refused = await conn.renew_with(_s(data, "token"))
    if refused is not None:
        raise CollabError(RENEWAL_REFUSED.get(refused, 409), refused)
    return {"expires_at": iso(conn.claims.exp)}


def _reply(conn: Peer, body: dict[str, Any]) -> None:
    conn.send(outgoing.app_message(body), "app")
