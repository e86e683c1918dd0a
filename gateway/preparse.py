"""Bounded pre-parser run on every inbound WebSocket message before pycrdt or any peer sees it.

The public API of `gateway.wire` (issue 9, item 1). Typical use in the frame handler::

    frame = parse_frame(data, limits)                       # framing, size, message type
    if frame.kind in ("sync_step2", "sync_update"):
        info = check_update(frame.body, limits, doc=shape)  # structs, depths, clocks
        ...ownership checks on info.blocks, apply to pycrdt...
        shape.commit(info)
    elif frame.kind == "sync_step1":
        check_state_vector(frame.body, limits)
    elif frame.kind == "awareness":
        entries = check_awareness(frame.body, limits)

Every refusal raises `ProtocolError` (`.reason` for metrics, `.close_code` for the socket).
Limits and their reasons: docs/security.md.
"""

from gateway.wire.limits import (
    CLOSE_MALFORMED,
    CLOSE_TOO_LARGE,
    STATE_LIMITS,
    Limits,
    ProtocolError,
)
from gateway.wire.messages import (
    AwarenessEntry,
    Frame,
    FrameKind,
    check_awareness,
    check_state_vector,
    parse_frame,
)
from gateway.wire.shape import DocShape, UpdateInfo, check_update

__all__ = [
    "CLOSE_MALFORMED",
    "CLOSE_TOO_LARGE",
    "STATE_LIMITS",
    "AwarenessEntry",
    "DocShape",
    "Frame",
    "FrameKind",
    "Limits",
    "ProtocolError",
    "UpdateInfo",
    "check_awareness",
    "check_state_vector",
    "check_update",
    "parse_frame",
]
