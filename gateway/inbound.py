"""The single entry of every inbound frame: bounded pre-parse, then typed messages.

Nothing from a client reaches pycrdt or another client without passing `decode` first
(gateway/preparse.py does the bounded parsing; this module maps its results to our messages).
"""

from dataclasses import dataclass, field

from pycrdt import write_var_uint

from gateway import preparse
from gateway.errors import TOO_LARGE, Refused
from gateway.preparse import AwarenessEntry, Limits, ProtocolError, UpdateInfo
from gateway.wire.reader import Reader
from schemas.settings import Settings


@dataclass(frozen=True, slots=True)
class Inbound:
    """One decoded client message. `body` is the update, state vector or awareness update."""

    kind: str
    body: bytes
    info: UpdateInfo | None = None  # for sync_step2 / sync_update
    entries: list[AwarenessEntry] = field(default_factory=list)  # for awareness


def limits_for(settings: Settings) -> Limits:
    return Limits(max_message_bytes=settings.max_message_bytes)


def decode(
    data: bytes,
    limits: Limits,
    shape: preparse.DocShape | None = None,
    *,
    read_only: bool = False,
) -> Inbound:
    """Raise Refused (4400 / 4413) for anything that is not one well-formed message.

    With `shape` (the letter's known clocks and type depths), updates are also checked against
    the document they will be applied to. A `read_only` role's updates are never applied: their
    bodies are not checked (`unread`).
    """
    if len(data) > limits.max_message_bytes:
        raise Refused(TOO_LARGE, "message_too_large")
    try:
        frame = preparse.parse_frame(data, limits)
        if frame.kind in ("sync_step2", "sync_update") and read_only:
            return Inbound(frame.kind, frame.body, info=unread(frame.body))
        if frame.kind in ("sync_step2", "sync_update"):
            # A step 2 carries its sender's whole state, with the deletions its Y.Doc holds
            # pending: left out, not refused (docs/security.md "Pending deletions").
            strip = frame.kind == "sync_step2"
            info = preparse.check_update(frame.body, limits, shape, strip_pending=strip)
            return Inbound(frame.kind, frame.body, info=info)
        if frame.kind == "sync_step1":
            preparse.check_state_vector(frame.body, limits)
        elif frame.kind == "awareness":
            entries = preparse.check_awareness(frame.body, limits)
            return Inbound(frame.kind, frame.body, entries=entries)
        return Inbound(frame.kind, frame.body)
    except ProtocolError as exc:
        raise Refused(exc.close_code, exc.reason) from None


def step2_body(body: bytes, limits: Limits, shape: preparse.DocShape) -> UpdateInfo:
    """`body` checked as `decode` checks a sync step 2 carrying it (a REST write, never framed:
    its size counted with the frame's 2 + varUint header bytes, its pending deletions left out,
    refused alike)."""
    if 2 + len(write_var_uint(len(body))) + len(body) > limits.max_message_bytes:
        raise Refused(TOO_LARGE, "message_too_large")
    try:
        return preparse.check_update(body, limits, shape, strip_pending=True)
    except ProtocolError as exc:
        raise Refused(exc.close_code, exc.reason) from None


def unread(update: bytes) -> UpdateInfo:
    """A read-only role's update or step 2, refused unapplied (gateway/live/room.py): only
    whether it is `00 00` and whether it has structs (the client is told it was refused) are
    read, in O(1). Checking the rest cost a viewer nothing and the loop up to ~1 s a frame
    (250,000 delete ranges), which no budget of theirs bounded. `blocks`, if it has structs:
    its first client section's (client, first clock, first clock), not their extent. Those
    first varints are read as any are (a body cut or overlong there is refused, 4400); what
    follows them is not seen."""
    r = Reader(update)
    blocks: tuple[tuple[int, int, int], ...] = ()
    if r.uint():  # client sections with structs
        r.uint()  # the first one's struct count
        client = r.uint()
        clock = r.uint()
        blocks = ((client, clock, clock),)
    return UpdateInfo(blocks=blocks, deletes=(), is_empty=update == b"\x00\x00", new_type_depth=0)
