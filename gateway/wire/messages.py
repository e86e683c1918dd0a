"""y-protocols framing, state vectors and awareness updates (y-protocols sync.js, awareness.js).

One protocol message per WebSocket frame (what y-websocket sends); anything after it is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from .limits import Limits, ProtocolError
from .reader import Reader
from .values import parse_json

FrameKind = Literal[
    "sync_step1", "sync_step2", "sync_update", "awareness", "query_awareness", "auth", "app"
]

MSG_SYNC, MSG_AWARENESS, MSG_AUTH, MSG_QUERY_AWARENESS, MSG_APP = 0, 1, 2, 3, 100
_SYNC_KINDS: tuple[FrameKind, ...] = ("sync_step1", "sync_step2", "sync_update")


@dataclass(frozen=True)
class Frame:
    """One inbound message. `body`: the state vector or update bytes for sync, the awareness
    update bytes, the UTF-8 JSON text for app (type 100), the denial reason for auth, b"" for
    query_awareness."""

    kind: FrameKind
    body: bytes


@dataclass(frozen=True)
class AwarenessEntry:
    client_id: int
    clock: int
    state: dict[str, Any] | None  # None: the client's state is removed


def parse_frame(data: bytes, limits: Limits) -> Frame:
    """Split a y-protocol frame; the body is checked by the matching check_* function."""
    if len(data) > limits.max_message_bytes:
        raise ProtocolError("message_too_large", f"{len(data)} bytes", 4413)
    data = bytes(data)
    r = Reader(data)
    msg_type = r.uint()
    if msg_type == MSG_SYNC:
        sub = r.uint()
        if sub > 2:
            raise ProtocolError("unknown_sync_type", str(sub))
        frame = Frame(_SYNC_KINDS[sub], r.buf())
    elif msg_type == MSG_AWARENESS:
        frame = Frame("awareness", r.buf())
    elif msg_type == MSG_QUERY_AWARENESS:
        frame = Frame("query_awareness", b"")
    elif msg_type == MSG_APP:
        frame = Frame("app", _app_body(r, limits))
    elif msg_type == MSG_AUTH:
        if r.uint() != 0:  # permission-denied is the only auth message
            raise ProtocolError("unknown_auth_type")
        frame = Frame("auth", r.string().encode())
    else:
        raise ProtocolError("unknown_message_type", str(msg_type))
    r.expect_end()
    return frame


def _app_body(r: Reader, limits: Limits) -> bytes:
    raw = bounded_text(r, limits.max_app_bytes, "app_message_too_large")
    parse_json(raw.decode(), limits.max_any_depth)
    return raw


def bounded_text(r: Reader, limit: int, reason: str) -> bytes:
    """A varString whose byte length is capped before anything is copied; UTF-8 checked."""
    n = r.uint()
    if n > limit:
        raise ProtocolError(reason, f"{n} bytes", 4413)
    raw = r.raw(n)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError("invalid_utf8", str(exc)) from None
    return raw


def check_state_vector(sv: bytes, limits: Limits) -> dict[int, int]:
    """A state vector: varUint count, then (client, clock) pairs of varUints."""
    if len(sv) > limits.max_message_bytes:
        raise ProtocolError("message_too_large", f"{len(sv)} bytes", 4413)
    r = Reader(bytes(sv))
    vector: dict[int, int] = {}
    for _ in range(r.count(2, limits.max_sv_entries, "sv_entries")):
        client, clock = r.uint(), r.uint()
        if client > limits.max_client_id:
            raise ProtocolError("client_id_too_large", str(client))
        if clock > limits.max_clock:
            raise ProtocolError("clock_too_large", f"client {client} at {clock}")
        vector[client] = clock
    r.expect_end()
    return vector


def check_awareness(update: bytes, limits: Limits) -> list[AwarenessEntry]:
    """An awareness update: count, then (client id, clock, JSON state string) per entry."""
    if len(update) > limits.max_message_bytes:
        raise ProtocolError("message_too_large", f"{len(update)} bytes", 4413)
    r = Reader(bytes(update))
    entries = []
    for _ in range(r.count(3, limits.max_awareness_entries, "awareness_entries")):
        client = r.uint()
        if client > limits.max_client_id:
            raise ProtocolError("client_id_too_large", str(client))
        clock = r.uint_wide()  # read wide so a 2^64 clock gets its own reason
        if clock > limits.max_awareness_clock:
            raise ProtocolError("awareness_clock_too_large", str(clock))
        entries.append(AwarenessEntry(client, clock, _awareness_state(r, limits)))
    r.expect_end()
    return entries


def _awareness_state(r: Reader, limits: Limits) -> dict[str, Any] | None:
    raw = bounded_text(r, limits.max_awareness_state_bytes, "awareness_state_too_large")
    state = parse_json(raw.decode(), limits.max_any_depth)
    if state is not None and not isinstance(state, dict):
        raise ProtocolError("awareness_state_not_object", type(state).__name__)
    return state
