"""A letter's awareness states: who owns which client id, stamping, removal on close.

States live in pycrdt's Awareness (clock rules as in y-protocols). A connection owns exactly
the one awareness client id it introduced first (a y-websocket tab has one: its doc's clientID);
entries for any other id are dropped, never relayed, so nobody can move or remove another user's
caret. The same user reconnecting on a new socket takes its id over (the old socket may not have
been noticed as gone yet), here or through another instance: a tab whose instance died comes
back with the same id. The `user` field is always the token's identity. Clocks, sizes and
counts are bounded by the pre-parser before we get here (docs/security.md).

An id held for another instance lives as long as that instance renews it: a state not updated
within y-protocols' outdated timeout is removed for this instance's peers, as y-protocols does
(a dead instance never logs its connections' removals).
"""

import asyncio
import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

from pycrdt import Awareness, Doc, Encoder

from gateway.auth import Claims
from gateway.preparse import AwarenessEntry

MAX_IDS_PER_CONNECTION = 1  # a y-websocket tab uses its doc's clientID, and only that
_PALETTE = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6",
            "#469990", "#9a6324", "#800000", "#808000", "#000075")  # fmt: skip
REMOTE = "remote"  # owner of ids introduced through another gateway instance
# y-protocols' outdatedTimeout: clients renew their state every 15 s, so an id held for another
# instance that was not updated for 30 s is gone (its instance too, most likely).
REMOTE_TIMEOUT_S = 30.0


def user_color(user_id: str) -> str:
    digest = hashlib.sha256(user_id.encode()).digest()
    return _PALETTE[digest[0] % len(_PALETTE)]


def stamp(claims: Claims) -> dict[str, str]:
    return user_stamp(claims.sub, claims.name)


def user_stamp(user_id: str, name: str) -> dict[str, str]:
    """How a user is shown to peers (awareness `user`, app messages): `stamp` without a token,
    for a user named by a log record (another instance's REST write)."""
    return {"id": user_id, "name": name, "color": user_color(user_id)}


class Presence:
    def __init__(self, on_expired: "Expired | None" = None) -> None:
        """`on_expired(update)`: remote states timed out; the update removes them for peers."""
        self._awareness = Awareness(Doc())
        self._awareness.set_local_state(None)  # the server itself has no caret
        self._owners: dict[int, str] = {}  # client id -> owning connection id (or REMOTE)
        self._users: dict[int, str] = {}  # client id -> the owner's user id
        self._renewed: dict[int, float] = {}  # REMOTE client id -> when its last update came
        self._on_expired = on_expired
        self._timer: asyncio.TimerHandle | None = None

    def owned_by(self, owner: str) -> list[int]:
        return [cid for cid, who in self._owners.items() if who == owner]

    def changes(self, entries: list[AwarenessEntry]) -> list[AwarenessEntry]:
        """The entries that would change the letter's awareness, by y-protocols' own rule: a
        newer clock, or a removal at the same clock. The rest are echoes: y-websocket's
        provider sends back every state it receives, so each awareness change comes back from
        every peer at the clock the letter already holds."""
        meta, states = self._awareness.meta, self._awareness.states
        fresh = []
        for entry in entries:
            known = meta.get(entry.client_id)
            clock = 0 if known is None else known["clock"]
            if clock < entry.clock or (
                clock == entry.clock and entry.state is None and entry.client_id in states
            ):
                fresh.append(entry)
        return fresh

    def accept(
        self, owner: str, claims: Claims, entries: list[AwarenessEntry]
    ) -> tuple[bytes, list[int]]:
        """Apply a connection's entries; return the stamped update and the ids it kept."""
        kept: list[tuple[int, int, dict[str, Any] | None]] = []
        for entry in entries:
            if not self._may_use(owner, claims.sub, entry):
                continue
            state = None if entry.state is None else {**entry.state, "user": stamp(claims)}
            kept.append((entry.client_id, entry.clock, state))
        update = _encode(kept)
        if kept:
            self._awareness.apply_awareness_update(update, owner)
            self._forget_removed([cid for cid, _, state in kept if state is None])
        return update, [cid for cid, _, _ in kept]

    def _may_use(self, owner: str, user: str, entry: AwarenessEntry) -> bool:
        holder = self._owners.get(entry.client_id)
        if holder == owner:
            return True
        # Held for another instance too: the user's tab reconnected here (that one may be dead).
        taken_over = holder is not None and self._users.get(entry.client_id) == user
        free = holder is None and entry.state is not None
        if (free or taken_over) and len(self.owned_by(owner)) < MAX_IDS_PER_CONNECTION:
            self._owners[entry.client_id], self._users[entry.client_id] = owner, user
            self._renewed.pop(entry.client_id, None)
            return True
        return False

    def apply_remote(self, update: bytes) -> None:
        """An update another gateway already checked and stamped."""
        meta, states = self._awareness.meta, self._awareness.states
        clocks = {cid: m["clock"] for cid, m in meta.items()}
        self._awareness.apply_awareness_update(update, REMOTE)
        now = time.monotonic()
        for cid, seen in meta.items():
            if seen["clock"] == clocks.get(cid) or cid not in states:
                continue  # not newer than what we hold
            user = _user_of(states[cid])
            holder = self._owners.get(cid)
            # The same user's tab went on through that instance (the other took the id over).
            if holder is None or (holder != REMOTE and user == self._users.get(cid)):
                self._owners[cid] = REMOTE
                if user is not None:
                    self._users[cid] = user
            if self._owners[cid] == REMOTE:
                self._renewed[cid] = now
        self._forget_removed([c for c in self._owners if c not in states])
        self._expire_later()

    def stop(self) -> None:
        """No more expiry (the room is closing: a timer would keep it in memory)."""
        self._on_expired = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire_later(self) -> None:
        if self._timer is not None or not self._renewed or self._on_expired is None:
            return
        # Renewals only move deadlines later: a timer already set is never too late.
        due = min(self._renewed.values()) + REMOTE_TIMEOUT_S
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(max(0.0, due - time.monotonic()), self._expire)

    def _expire(self) -> None:
        self._timer = None
        cutoff = time.monotonic() - REMOTE_TIMEOUT_S
        gone = [cid for cid, at in self._renewed.items() if at <= cutoff]
        if gone and self._on_expired is not None:
            self._awareness.remove_awareness_states(gone, "timeout")
            update = self._awareness.encode_awareness_update(gone)  # null states, same clocks
            self._forget_removed(gone)
            self._on_expired(update)
        self._expire_later()

    def remove(self, owner: str) -> bytes | None:
        """Remove every id `owner` introduced; the update telling everyone (None: had none)."""
        ids = self.owned_by(owner)
        if not ids:
            return None
        self._awareness.remove_awareness_states(ids, owner)
        self._forget_removed(ids)
        return self._awareness.encode_awareness_update(ids)

    def encode(self, ids: list[int] | None = None) -> bytes | None:
        """Current states of `ids` (default: everyone present); None when there are none."""
        if ids is None:
            ids = list(self._awareness.states)
        ids = [cid for cid in ids if cid in self._awareness.meta]
        return self._awareness.encode_awareness_update(ids) if ids else None

    def _forget_removed(self, ids: list[int]) -> None:
        for cid in ids:
            self._owners.pop(cid, None)
            self._users.pop(cid, None)
            self._renewed.pop(cid, None)


def _user_of(state: dict[str, Any]) -> str | None:
    """The user id another instance stamped the state with (`stamp`)."""
    user = state.get("user")
    uid = user.get("id") if isinstance(user, dict) else None
    return uid if isinstance(uid, str) else None


def _encode(entries: list[tuple[int, int, dict[str, Any] | None]]) -> bytes:
    encoder = Encoder()
    encoder.write_var_uint(len(entries))
    for client_id, clock, state in entries:
        encoder.write_var_uint(client_id)
        encoder.write_var_uint(clock)
        # ASCII JSON: Encoder.write_var_string counts characters, which equals bytes only here.
        encoder.write_var_string(json.dumps(state, separators=(",", ":"), ensure_ascii=True))
    return encoder.to_bytes()


class Throttle:
    """At most one call of `flush(owner, ids)` per owner per `interval_s`; ids merge meanwhile."""

    def __init__(self, interval_s: float, flush: "Flush") -> None:
        self._interval_s, self._flush = interval_s, flush
        self._dirty: dict[str, set[int]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._last: dict[str, float] = {}

    def touch(self, owner: str, ids: list[int]) -> None:
        self._dirty.setdefault(owner, set()).update(ids)
        if owner in self._timers:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, self._last.get(owner, 0.0) + self._interval_s - loop.time())
        self._timers[owner] = loop.call_later(delay, self._fire, owner)

    def forget(self, owner: str) -> None:
        """Drop what is pending for `owner` (its removal supersedes it)."""
        timer = self._timers.pop(owner, None)
        if timer is not None:
            timer.cancel()
        self._dirty.pop(owner, None)
        self._last.pop(owner, None)

    def cancel_all(self) -> None:
        for owner in list(self._timers):
            self.forget(owner)

    def _fire(self, owner: str) -> None:
        self._timers.pop(owner, None)
        self._last[owner] = asyncio.get_running_loop().time()
        ids = self._dirty.pop(owner, set())
        if ids:
            self._flush(owner, sorted(ids))


Flush = Callable[[str, list[int]], None]
Expired = Callable[[bytes], None]
