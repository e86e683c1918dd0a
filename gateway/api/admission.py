"""The checks before a session on a letter, shared by both WebSocket endpoints.

`/v1/{room}` runs them at the HTTP handshake (the token is in the URL) and answers with an HTTP
status; `/v1/hocuspocus` runs them per document when its in-band token arrives and answers with
a permission-denied message. The statuses and reasons are the same for both.
"""

from dataclasses import dataclass

from eventlog.errors import LogError
from gateway.access import LetterMeta
from gateway.auth import Claims
from gateway.errors import AuthError
from gateway.service import Gateway


@dataclass(frozen=True, slots=True)
class Admitted:
    """Counted against the connection limits: `gateway.rooms.release(claims, meta.letter_id)`
    once the session ends."""

    claims: Claims
    meta: LetterMeta


@dataclass(frozen=True, slots=True)
class Denied:
    status: int
    reason: str
    retry_after_s: float = 0


def letter_id_of(room: str) -> str:
    return room.removeprefix("letter-")


async def admit(
    gateway: Gateway,
    token: str | None,
    room: str,
    letter_param: str | None = None,
    host: str | None = None,
) -> Admitted | Denied:
    """401 for tokens, 429 over the handshake budget or a connection limit, 400 for a
    `letterId` that is not the room's, 403 for letters of other firms and unknown letters alike,
    503 while the log cannot be read (an unknown letter is looked for in it). Why a token was
    refused is logged, rate-limited, with the client's `host` (gateway/auth_refusals.py)."""
    ctx = gateway.ctx
    try:
        claims = await ctx.verifier.verify(token)
    except AuthError as exc:
        ctx.verifier.refusals.note(ctx.metrics, exc, "handshake", host)
        return Denied(401, "unauthorized")
    wait = gateway.ctx.budget(gateway.ctx.handshakes, claims)
    if wait is not None:  # each handshake logs two session events, kept forever
        return Denied(429, "handshake_rate_limited", wait)
    letter_id = letter_id_of(room)
    if letter_param is not None and letter_param != letter_id:
        return Denied(400, "letter_id_mismatch")
    try:
        meta = await gateway.access.lookup(letter_id)
    except LogError:
        return Denied(503, "log_unavailable")
    if meta is None or not gateway.may_reach(claims, meta):
        return Denied(403, "forbidden")
    refused = gateway.rooms.admit(claims, letter_id)
    if refused is not None:
        return Denied(429, refused)
    return Admitted(claims, meta)
