"""Awareness updates (y-protocols) folded into a letter's clients, and presence derived from them.

Pure. An awareness update is `varuint n` then n x (`varuint clientID`, `varuint clock`,
`varstring JSON state`, JSON `null` meaning "removed"). y-protocols' rule decides which entry
wins: a higher clock, or the same clock with a removal.
"""

import json
from typing import Any

from pycrdt import Decoder

from projector.state import Json, LetterState

STATUSES = ("active", "typing", "idle", "away")
TYPING_MS = 5_000  # an edit this recent reads as "typing"
IDLE_MS = 60_000  # no input for 60 s: idle (issue 7)
AWAY_MS = 300_000  # 5 min idle: away


class AwarenessDecodeError(ValueError):
    """Bytes that are not a y-protocols awareness update."""


def decode_awareness(update: bytes) -> list[tuple[int, int, Json | None]]:
    """(client id, clock, state or None for a removal) for each entry of the update."""
    try:
        decoder = Decoder(update)
        entries = []
        for _ in range(decoder.read_var_uint()):
            client, clock = decoder.read_var_uint(), decoder.read_var_uint()
            state = json.loads(decoder.read_var_string())
            if state is not None and not isinstance(state, dict):
                raise AwarenessDecodeError(f"state of client {client} is not an object")
            entries.append((client, clock, state))
    except (IndexError, RuntimeError, UnicodeDecodeError, ValueError) as exc:
        raise AwarenessDecodeError(f"bad awareness update: {exc}") from None
    if decoder.length:
        raise AwarenessDecodeError(f"{decoder.length} trailing bytes in an awareness update")
    return entries


def fold_awareness(state: LetterState, update: bytes, conn: str, user: str, ts: int) -> None:
    """Apply one update from connection `conn` (ignored once that connection has left)."""
    if conn in state.closed:
        return  # the presence topic may lag behind the letters topic's session.left
    for client, clock, aw in decode_awareness(update):
        key = str(client)
        known = state.clients.get(key)
        if known is not None and not _wins(known, clock, aw):
            continue
        owner = _user_id(aw) or (known or {}).get("user") or user
        if aw is not None and (known is None or _moved(known.get("state"), aw)):
            note_activity(state, owner, "seen", ts)
        state.clients[key] = {"clock": clock, "conn": conn, "user": owner, "state": aw}


def note_activity(state: LetterState, user: str, kind: str, ts: int) -> None:
    """Keep the newest time: the letters and presence topics are folded in whatever order
    their batches come, so only an order-independent merge makes a replay give the same."""
    act = state.activity.setdefault(user, {})
    act[kind] = max(act.get(kind, 0), ts)


def presence(state: LetterState) -> dict[str, Json]:
    """`presence:<letterId>`: user id -> {name, color, cursor, status, lastActivity}."""
    users = {c["userId"] for c in state.connections.values()}
    users |= {c["user"] for c in state.clients.values() if c["state"] is not None}
    return {uid: _presence_of(state, uid) for uid in sorted(users)}


def _presence_of(state: LetterState, uid: str) -> Json:
    live = [c for c in state.clients.values() if c["user"] == uid and c["state"] is not None]
    aw: Json = max(live, key=lambda c: c["clock"])["state"] if live else {}
    stamped: Json = aw["user"] if isinstance(aw.get("user"), dict) else {}
    known = state.users.get(uid, {})
    act = state.activity.get(uid, {})
    last = max(act.get("edit", 0), act.get("seen", 0))
    status = aw.get("status")
    if status not in STATUSES:
        status = _derived_status(state.clock, act.get("edit", 0), last)
    return {
        "name": stamped.get("name") or known.get("name", ""),
        "color": stamped.get("color") or known.get("color", ""),
        "cursor": aw.get("cursor"),
        "status": status,
        "lastActivity": last,
    }


def _derived_status(now: int, last_edit: int, last: int) -> str:
    # "now" is the newest event folded for the letter, never the wall clock: a replay of the
    # log yields the same statuses. Readers age `lastActivity` themselves between events.
    if last_edit and now - last_edit < TYPING_MS:
        return "typing"
    if now - last < IDLE_MS:
        return "active"
    return "idle" if now - last < AWAY_MS else "away"


def _wins(known: Json, clock: int, aw: Json | None) -> bool:
    return bool(clock > known["clock"] or (clock == known["clock"] and aw is None))


def _moved(before: Any, after: Json) -> bool:
    """Anything but the periodic renewal (same state, higher clock) counts as activity."""
    return bool(before != after)


def _user_id(aw: Json | None) -> str | None:
    user = (aw or {}).get("user")
    uid = user.get("id") if isinstance(user, dict) else None
    return uid if isinstance(uid, str) and uid else None
