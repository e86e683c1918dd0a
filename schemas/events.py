"""Event types and their payload models (DESIGN.md "The record model").

Add fields, never change meaning; bump `version` in `EVENT_TYPES` on a breaking change.
`doc.update` and `awareness.update` carry raw Yjs bytes; every other type carries JSON.
"""

import builtins
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Topic(StrEnum):
    """Topic kinds; the full topic name is the configured prefix plus the kind."""

    LETTERS = "letters"  # durable collaboration events, kept forever
    PRESENCE = "presence"  # awareness, kept 24 h


# The snapshotter's consumer group: its row in `consumer_positions` also tells readers of its
# tables how far into each partition they cover (the gateway's access lookup).
SNAPSHOTTER_GROUP = "snapshotter"


class Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class UserRef(Payload):
    id: str = Field(max_length=256)
    name: str = Field(default="", max_length=256)
    color: str = Field(default="", max_length=32)


class CreateKey(Payload):
    """A create's `Idempotency-Key` claim (a letter's, a comment thread's or a reply's), for a
    Redis that lost it (`backfill locks` restores it: gateway/api/idempotency.py). `key`:
    sha256 (hex) of the claim's Redis key, the caller's firm, user and key: the key itself
    stays out of a log kept forever, since a client may put anything in it. `request`: the
    hash of the request that claimed it."""

    key: str = Field(max_length=128)
    request: str = Field(max_length=128)


class LetterCreated(Payload):
    letter_id: str = Field(max_length=128)
    firm_id: str = Field(max_length=128)
    title: str = Field(max_length=500)
    created_by: str = Field(max_length=256)
    # The creator's display name (the token's `name`): the initial content is theirs, and is
    # named before they ever join ("" in records logged before it was kept, or none given).
    creator_name: str = Field(default="", max_length=256)
    idempotency: CreateKey | None = None  # created with an `Idempotency-Key`


class SessionJoined(Payload):
    conn_id: str = Field(max_length=64)
    user: UserRef
    role: str = Field(max_length=32)


# `SessionLeft.reason` of the sessions a gateway ends when it drains (1001): their users
# reconnect to another instance at once, so this is not the end of the letter's session (the
# snapshotter puts its session-end version off, docs/contracts.md).
SHUTDOWN_REASON = "server shutting down"
# Those of the sessions a gateway ends when the letter's log fails under it (4503): the clients
# reconnect and resync at once, as after a drain, so the session goes on too.
LOG_FAILED_REASON = "log unavailable, reconnect"
LOAD_FAILED_REASON = "letter could not be loaded, reconnect"
RECONNECTING = frozenset({SHUTDOWN_REASON, LOG_FAILED_REASON, LOAD_FAILED_REASON})
# Of those, the ones whose session.left waits with the letter's unlogged entries for the log to
# come back (gateway/live/rescue.py): logged late, so the envelope's `ts` dates the end.
RESCUED = frozenset({LOG_FAILED_REASON, LOAD_FAILED_REASON})
# Those the projector logs for the connections of a gateway that died (projector/stale.py),
# followed by ": <gatewayId>": logged when its sweep noticed, a minute or more after; the
# envelope's `ts` is the gateway's last heartbeat, when the session ended.
GATEWAY_GONE_REASON = "gateway gone"
# Those of a client that left: its close frame received, or gone without one (its process
# killed, its network lost, no pong in time).
CLIENT_CLOSED_REASON = "client closed"
CONNECTION_LOST_REASON = "connection lost"


class SessionLeft(Payload):
    conn_id: str = Field(max_length=64)
    user: UserRef
    role: str = Field(max_length=32)
    reason: str = Field(default="", max_length=200)
    duration_ms: int = Field(default=0, ge=0)


class Anchor(Payload):
    """A text range as Yjs relative positions (base64 of their v1 encoding) plus the quote.

    `after` is a position on the first character after the range (assoc 0), or, when the range
    ends at its paragraph's end, Yjs' position at that end (the paragraph's id, no item); ""
    for none (anchors made before it). The range ends there once its last character is deleted
    (and its first is not), so that text retyped in its place ("14" -> "15") stays in it."""

    start: str = Field(max_length=1024)
    end: str = Field(max_length=1024)
    quote: str = Field(default="", max_length=10_000)
    after: str = Field(default="", max_length=1024)


class CommentCreated(Payload):
    thread_id: str = Field(max_length=64)
    comment_id: str = Field(max_length=64)
    anchor: Anchor
    body: str = Field(max_length=10_000)
    mentions: list[str] = Field(default_factory=list, max_length=50)
    author: UserRef | None = None  # the commenter's name and colour, from the token
    # Posted with an `Idempotency-Key`: its claim, for a Redis that lost it (as a letter's)
    idempotency: CreateKey | None = None


class CommentReplied(Payload):
    thread_id: str = Field(max_length=64)
    comment_id: str = Field(max_length=64)
    body: str = Field(max_length=10_000)
    mentions: list[str] = Field(default_factory=list, max_length=50)
    author: UserRef | None = None  # the commenter's name and colour, from the token
    idempotency: CreateKey | None = None  # as `CommentCreated`'s


class CommentEdited(Payload):
    thread_id: str = Field(max_length=64)
    comment_id: str = Field(max_length=64)
    body: str = Field(max_length=10_000)
    mentions: list[str] = Field(default_factory=list, max_length=50)


class CommentDeleted(Payload):
    thread_id: str = Field(max_length=64)
    comment_id: str = Field(max_length=64)


class CommentResolved(Payload):
    thread_id: str = Field(max_length=64)


class CommentReopened(Payload):
    thread_id: str = Field(max_length=64)


class LockAcquired(Payload):
    section: str = Field(max_length=200)
    holder: UserRef
    ttl_s: int = Field(ge=1)


class LockReleased(Payload):
    section: str = Field(max_length=200)
    holder: UserRef


class LockExpired(Payload):
    section: str = Field(max_length=200)
    holder: UserRef


class NotificationRead(Payload):
    """The envelope's user read their notifications for these comments of the letter."""

    comment_ids: list[str] = Field(max_length=500)


class VersionSaved(Payload):
    label: str = Field(default="", max_length=200)


@dataclass(frozen=True, slots=True)
class EventSpec:
    """What the contract says about one event type."""

    type: str
    topic: Topic
    version: int
    # builtins.type: the field `type` above shadows the builtin inside this class body.
    model: builtins.type[Payload] | None  # None: the value is raw Yjs bytes


_SPECS = [
    EventSpec("letter.created", Topic.LETTERS, 1, LetterCreated),
    EventSpec("doc.update", Topic.LETTERS, 1, None),
    EventSpec("awareness.update", Topic.PRESENCE, 1, None),
    EventSpec("session.joined", Topic.LETTERS, 1, SessionJoined),
    EventSpec("session.left", Topic.LETTERS, 1, SessionLeft),
    EventSpec("comment.created", Topic.LETTERS, 1, CommentCreated),
    EventSpec("comment.replied", Topic.LETTERS, 1, CommentReplied),
    EventSpec("comment.edited", Topic.LETTERS, 1, CommentEdited),
    EventSpec("comment.deleted", Topic.LETTERS, 1, CommentDeleted),
    EventSpec("comment.resolved", Topic.LETTERS, 1, CommentResolved),
    EventSpec("comment.reopened", Topic.LETTERS, 1, CommentReopened),
    EventSpec("lock.acquired", Topic.LETTERS, 1, LockAcquired),
    EventSpec("lock.released", Topic.LETTERS, 1, LockReleased),
    EventSpec("lock.expired", Topic.LETTERS, 1, LockExpired),
    EventSpec("version.saved", Topic.LETTERS, 1, VersionSaved),
    EventSpec("notification.read", Topic.LETTERS, 1, NotificationRead),
]

EVENT_TYPES: dict[str, EventSpec] = {spec.type: spec for spec in _SPECS}
MODEL_TYPES: dict[type[Payload], EventSpec] = {s.model: s for s in _SPECS if s.model is not None}
