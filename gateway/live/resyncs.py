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
from that user's own resync, never from a copy someone else relayed. A held part that refers to
what no part has (the pre-parser names the struct) cannot apply with any of them: it is left out
of that union and the rest tried again, so that one crafted part keeps no one else out.

A part is computed against the letter as it was then; by the time it is taken, the letter may
have what it carries (its author's next resync, taken alone). So a held part is trimmed to what
the letter still lacks right before it is logged, and dropped once it brings nothing: a record
repeating structs would count them again for its user (auditors read who wrote what from the
records). A resync's step 2 is trimmed so too (Room._receive_update).

Computing an own part copies the whole letter, on the event loop: a resync whose structs are all
under other users' ids and that deletes nothing has none and is refused without it, and a letter
works on refused resyncs at most at a rate (TRIES_PER_S), the gateway's letters together copy at
most COPY_BYTES_PER_S, and the others are refused with 1013 at once.
"""

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pycrdt import Doc
from pycrdt import get_update as diff_update

from gateway.auth import Claims
from gateway.live.buckets import TokenBucket
from gateway.wire.limits import STATE_LIMITS, Limits
from gateway.wire.update import scan_update
from schemas.ystate import decode_vector, encode_vector

HOLD_S = 30.0  # a held part waits this long for the resync that completes it
HOLD_USERS = 8  # parts held per letter (one per user, the latest)
HOLD_BYTES = 64 << 20  # what all letters of one gateway hold together (HoldBudget)
# A refused resync's own part is computed on a copy of the whole letter, on the event loop
# (0.1-1 s for a 2 MB letter): at most this often per letter, after a burst (a few peers coming
# back at once). The others are refused without it, and stock providers come back later.
TRIES_PER_S = 1.0
TRIES_BURST = 4
# ... and all letters of a gateway together copy at most this many bytes a second (~17 MB/s of
# copying is a whole event loop: a quarter of it at worst), after a burst: a user in many large
# letters, each within its own rate, would otherwise keep the loop copying (HoldBudget).
COPY_BYTES_PER_S = 4 << 20
COPY_BYTES_BURST = 16 << 20
_PAST_ANY_CLOCK = 2**53  # a state vector clock past every struct: "has them all"

Blocks = tuple[tuple[int, int, int], ...]  # (client, first clock, end clock), as UpdateInfo's


@dataclass(frozen=True)
class Held:
    claims: Claims
    conn_id: str
    update: bytes  # its own part
    blocks: Blocks  # its structs' clocks: which part a struct of a merge came from
    until: float
    charge: int  # its bytes in the HoldBudget


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


def lacking(doc: Doc[Any], update: bytes) -> bytes:
    """`update` without the structs `doc` has (a struct it has in part is cut); its delete set
    whole. Reads the update and the state vector only: no copy of the letter."""
    return diff_update(update, doc.get_state())


def still_adds(
    doc: Doc[Any], part: bytes, has_deleted: Callable[[int, int, int], bool]
) -> bytes | None:
    """What `doc` still lacks of `part` (a held part, an update repeating structs: `lacking`);
    None once it has every struct of it and has deleted all it deletes (`has_deleted`: the
    letter's DocShape's, which records its deletions as they are applied)."""
    trimmed = lacking(doc, part)
    scan = scan_update(trimmed, STATE_LIMITS)  # ours: the pre-parser checked the part
    if scan.blocks or not all(has_deleted(*d) for d in scan.deletes):
        return trimmed
    return None


def carries(blocks: Blocks, struct: tuple[int, int]) -> bool:
    client, clock = struct
    return any(c == client and first <= clock < end for c, first, end in blocks)


class HoldBudget:
    """What all letters of one gateway hold and copy together: a user may have a part held in
    every letter they open (one crafted resync each), and have own parts computed in each, so
    the letters' own bounds are not enough. One per gateway (its Context), not per process:
    gateways sharing a process share no budget. A part past its time counts no more, though its
    letter (loaded, but seeing no resync) has not dropped it yet."""

    def __init__(
        self,
        limit: int = HOLD_BYTES,
        clock: Callable[[], float] = time.monotonic,
        copies: tuple[float, float] = (COPY_BYTES_PER_S, COPY_BYTES_BURST),
    ):
        """`copies`: bytes of letters copied for own parts, a second and in a burst."""
        self.limit, self.clock = limit, clock
        self._copies = TokenBucket(*copies)
        self.held = 0  # bytes of every letter's parts
        # charge -> (until, size), in the order taken: every part waits HOLD_S, so the oldest
        # expires first.
        self._charges: dict[int, tuple[float, int]] = {}
        self._numbers = itertools.count()

    def take(self, size: int) -> tuple[int, float] | None:
        """A charge for `size` bytes and the time it lasts until; None over the limit."""
        now = self.clock()
        self._expire(now)
        if self.held + size > self.limit:
            return None
        charge, until = next(self._numbers), now + HOLD_S
        self._charges[charge] = (until, size)
        self.held += size
        return charge, until

    def may_copy(self, size: int) -> bool:
        """Whether a letter of `size` bytes may be copied now. A letter larger than what is
        left of the burst is copied while anything is left, and the debt paid off after (else
        a letter over the burst could never be)."""
        if not self._copies.take(1.0):
            return False
        self._copies.reserve(size - 1.0)
        return True

    def give(self, charge: int) -> None:
        _, size = self._charges.pop(charge, (0.0, 0))  # expired: already given back
        self.held -= size

    def _expire(self, now: float) -> None:
        while self._charges:
            charge = next(iter(self._charges))
            until, size = self._charges[charge]
            if until > now:
                return
            del self._charges[charge]
            self.held -= size


class HeldResyncs:
    """One letter's refused resyncs: the parts held, by user, and how often the letter tries
    to take them."""

    def __init__(self, limits: Limits, budget: HoldBudget) -> None:
        self._limits, self._budget, self._clock = limits, budget, budget.clock
        self._held: dict[str, Held] = {}
        self._tries = TokenBucket(TRIES_PER_S, TRIES_BURST)

    def may_try(self, size: int) -> bool:
        """Whether a refused resync may be worked on now (its own part computed on a copy of
        the letter's `size` bytes, held parts merged with it), within the letter's rate and the
        gateway's copying."""
        return self._tries.take() and self._budget.may_copy(size)

    def hold(self, claims: Claims, conn_id: str, part: bytes, blocks: Blocks = ()) -> None:
        """Keep `part` for a while (the latest of each user); too large a part, or one over
        what the process holds, is not kept (its resync is refused all the same)."""
        self._expire()
        self._drop(claims.sub)
        if len(self._held) >= HOLD_USERS:
            self._drop(next(iter(self._held)))  # the oldest
        if len(part) > self._limits.max_message_bytes:
            return
        taken = self._budget.take(len(part))
        if taken is not None:
            charge, until = taken
            self._held[claims.sub] = Held(claims, conn_id, part, blocks, until, charge)

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
            self._budget.give(held.charge)
