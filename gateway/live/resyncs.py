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
HOLD_BYTES = 64 << 20  # what all letters of one gateway hold together (HoldBudget)
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


class HoldBudget:
    """What all letters of one gateway hold together: a user may have a part held in every
    letter they open (one crafted resync each), so the letters' own bound is not enough. One
    per gateway (its Context), not per process: gateways sharing a process share no budget."""

    def __init__(self, limit: int = HOLD_BYTES) -> None:
        self.limit = limit
        self.held = 0  # bytes of every letter's parts

    def take(self, size: int) -> bool:
        if self.held + size > self.limit:
            return False
        self.held += size
        return True

    def give(self, size: int) -> None:
        self.held -= size


class HeldResyncs:
    """One letter's held parts, by user."""

    def __init__(
        self, limits: Limits, budget: HoldBudget, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._limits, self._budget, self._clock = limits, budget, clock
        self._held: dict[str, Held] = {}

    def hold(self, claims: Claims, conn_id: str, part: bytes) -> None:
        """Keep `part` for a while (the latest of each user); too large a part, or one over
        what the process holds, is not kept (its resync is refused all the same)."""
        self._expire()
        self._drop(claims.sub)
        if len(self._held) >= HOLD_USERS:
            self._drop(next(iter(self._held)))  # the oldest
        if len(part) > self._limits.max_message_bytes or not self._budget.take(len(part)):
            return
        self._held[claims.sub] = Held(claims, conn_id, part, self._clock() + HOLD_S)

    def others(self, user: str) -> list[Held]:
        self._expire()
        return [held for sub, held in self._held.items() if sub != user]

    def taken(self, parts: list[Held]) -> None:
        for held in parts:
            if self._held.get(held.claims.sub) is held:
                self._drop(held.claims.sub)

    def clear(self) -> None:
        """The letter leaves memory: its parts go."""
        for sub in list(self._held):
            self._drop(sub)

    def _expire(self) -> None:
        now = self._clock()
        for sub in [sub for sub, held in self._held.items() if held.until <= now]:
            self._drop(sub)

    def _drop(self, sub: str) -> None:
        held = self._held.pop(sub, None)
        if held is not None:
            self._budget.give(len(held.update))
