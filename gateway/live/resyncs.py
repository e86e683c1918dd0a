"""Resyncs that repeat other users' edits the letter lacks, applied together with their authors'.

Peers hear an update as it is queued for the log, so a gateway that dies before logging it
(kill -9: no rescue, docs/security.md) leaves it with its peers only. A peer's resync (sync step
2) then repeats it under a client id another user owns, and is refused: accepting it would let
any editor write under another user's id. Its author's own resync brings it back; but when two
peers each hold the other's (both typed in the dead process's last milliseconds), each resync
needs the other's first, and they were refused for ever.

So a refused resync's own part (its structs under ids its user owns, and its deletions) is held
here for a while, and a later refused resync is tried together with the held parts of other
users: if their union applies to the letter (nothing missing), it is taken, each part logged
under its own user. A part never carries structs under another user's id: each user's edits come
from that user's own resync, never from a copy someone else relayed.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pycrdt import Doc

from gateway.auth import Claims
from gateway.wire.limits import Limits
from schemas.ystate import decode_vector, encode_vector

HOLD_S = 30.0  # a held part waits this long for the resync that completes it
HOLD_USERS = 8  # parts held per letter (one per user, the latest)
_PAST_ANY_CLOCK = 2**53  # a state vector clock past every struct: "has them all"


@dataclass(frozen=True)
class Held:
    claims: Claims
    conn_id: str
    update: bytes  # its own part
    until: float


def own_part(doc: Doc[Any], update: bytes, foreign: list[int]) -> bytes | None:
    """What `update` adds to `doc`, without the structs under the `foreign` client ids (None:
    nothing): applied to a copy, then read back against `doc`'s state vector in which those ids
    have every clock. The delete set comes whole (deletions carry no client's ownership)."""
    scratch: Doc[Any] = Doc()
    scratch.apply_update(doc.get_update())
    scratch.apply_update(update)
    clocks = decode_vector(doc.get_state())
    clocks.update(dict.fromkeys(foreign, _PAST_ANY_CLOCK))
    part = scratch.get_update(encode_vector(clocks))
    return None if part == doc.get_update(doc.get_state()) else part


class HeldResyncs:
    """One letter's held parts, by user."""

    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic) -> None:
        self._limits, self._clock = limits, clock
        self._held: dict[str, Held] = {}

    def hold(self, claims: Claims, conn_id: str, part: bytes) -> None:
        """Keep `part` for a while (the latest of each user; too large a part is not kept)."""
        if len(part) > self._limits.max_message_bytes:
            return
        self._expire()
        self._held.pop(claims.sub, None)
        if len(self._held) >= HOLD_USERS:
            self._held.pop(next(iter(self._held)))  # the oldest
        self._held[claims.sub] = Held(claims, conn_id, part, self._clock() + HOLD_S)

    def others(self, user: str) -> list[Held]:
        self._expire()
        return [held for sub, held in self._held.items() if sub != user]

    def taken(self, parts: list[Held]) -> None:
        for held in parts:
            if self._held.get(held.claims.sub) is held:
                del self._held[held.claims.sub]

    def _expire(self) -> None:
        now = self._clock()
        for sub in [sub for sub, held in self._held.items() if held.until <= now]:
            del self._held[sub]
