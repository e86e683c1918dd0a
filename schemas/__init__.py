"""The contracts every other package imports.

Reads nothing, writes nothing: event types and payload models, the record envelope and its
codec, settings, SQL migrations, the exported JSON Schema files, and what a saved Yjs state
holds (`ystate`).
"""

from schemas.envelope import (
    Envelope,
    Event,
    EventDecodeError,
    decode_record,
    encode_event,
    new_event,
)
from schemas.events import (
    EVENT_TYPES,
    Anchor,
    CommentCreated,
    CommentDeleted,
    CommentEdited,
    CommentReopened,
    CommentReplied,
    CommentResolved,
    EventSpec,
    LetterCreated,
    LockAcquired,
    LockExpired,
    LockReleased,
    NotificationRead,
    SessionJoined,
    SessionLeft,
    Topic,
    UserRef,
    VersionSaved,
)
from schemas.ids import uuid7

__all__ = [
    "EVENT_TYPES",
    "Anchor",
    "CommentCreated",
    "CommentDeleted",
    "CommentEdited",
    "CommentReopened",
    "CommentReplied",
    "CommentResolved",
    "Envelope",
    "Event",
    "EventDecodeError",
    "EventSpec",
    "LetterCreated",
    "LockAcquired",
    "LockExpired",
    "LockReleased",
    "NotificationRead",
    "SessionJoined",
    "SessionLeft",
    "Topic",
    "UserRef",
    "VersionSaved",
    "decode_record",
    "encode_event",
    "new_event",
    "uuid7",
]
