"""Audit rows and edit coalescing (pure): "who changed what, when" without reading the log.

Edits are coalesced per user per burst: a user's updates join their open burst while each
arrives within `window_ms` of the burst's last update. Time is the log's record timestamp,
never the wall clock, and an open burst is part of the persisted letter state, so a replay or a
restart after a crash produces the same rows. A burst closes, deterministically, when:
the same user edits after the window; any later record of the letter is past the window;
the user's session ends (or the last collaborator leaves); a version is cut (every open burst:
no row spans a version, so a version's edits are the rows before it). The letter's initial
content (the `doc.update` appended with its `letter.created`) is a row of its own, marked
`initial`, never part of its creator's typing.

change_type values: `letter.created`, `session-start`, `session-end`, `edit`, `version`, and the
event type itself for comment.* and lock.* events.
"""

import uuid
from dataclasses import dataclass, field
from typing import Any

from snapshotter.document import EditDelta

Json = dict[str, Any]
_ID_NAMESPACE = uuid.UUID("6f1d1a52-2b8e-4a50-9a55-2f3c1c0c5e11")


@dataclass(frozen=True, slots=True)
class Position:
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class AuditRow:
    letter_id: str
    user_id: str
    change_type: str
    change_data: Json
    timestamp_ms: int
    position: Position

    @property
    def id(self) -> uuid.UUID:
        """Derived from the unique key, so a re-run produces the same id."""
        p = self.position
        return uuid.uuid5(_ID_NAMESPACE, f"{p.topic}/{p.partition}/{p.offset}/{self.change_type}")


@dataclass(slots=True)
class Burst:
    """One user's run of edits to one letter."""

    first_offset: int
    last_offset: int
    start_ms: int
    end_ms: int
    inserted: int = 0
    deleted: int = 0
    updates: int = 0
    paragraphs: list[int] = field(default_factory=list)
    formatted: int = 0

    def add(self, offset: int, ts_ms: int, delta: EditDelta) -> None:
        self.last_offset, self.end_ms = offset, max(self.end_ms, ts_ms)
        self.inserted += delta.inserted
        self.deleted += delta.deleted
        self.formatted += delta.formatted
        self.updates += 1
        if not delta.paragraphs.issubset(self.paragraphs):
            self.paragraphs = sorted(set(self.paragraphs) | delta.paragraphs)

    def to_json(self) -> Json:
        data = {
            "first_offset": self.first_offset,
            "last_offset": self.last_offset,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "inserted": self.inserted,
            "deleted": self.deleted,
            "updates": self.updates,
            "paragraphs": self.paragraphs,
        }
        if self.formatted:  # only then: a version before it can still load the state
            data["formatted"] = self.formatted
        return data

    @classmethod
    def from_json(cls, data: Json) -> "Burst":
        return cls(**data)


class Bursts:
    """The open bursts of one letter, keyed by user id."""

    def __init__(self, window_ms: int, open_bursts: dict[str, Burst] | None = None) -> None:
        self.window_ms = window_ms
        self.open = open_bursts or {}

    def edit(self, user: str, offset: int, ts_ms: int, delta: EditDelta) -> Burst | None:
        """Add an edit; return the user's previous burst when this edit starts a new one."""
        current = self.open.get(user)
        closed = None
        if current is not None and ts_ms - current.end_ms > self.window_ms:
            closed, current = self.open.pop(user), None
        if current is None:
            current = self.open[user] = Burst(offset, offset, ts_ms, ts_ms)
        current.add(offset, ts_ms, delta)
        return closed

    def expire(self, now_ms: int) -> list[tuple[str, Burst]]:
        """Close the bursts that are past the window at record time `now_ms`."""
        stale = [u for u, b in self.open.items() if now_ms - b.end_ms > self.window_ms]
        return [(user, self.open.pop(user)) for user in sorted(stale)]

    def close(self, user: str | None = None) -> list[tuple[str, Burst]]:
        """Close one user's burst, or all of them (user None)."""
        users = sorted(self.open) if user is None else [user] if user in self.open else []
        return [(u, self.open.pop(u)) for u in users]


def edit_row(
    letter_id: str, topic: str, partition: int, user: str, burst: Burst, *, initial: bool = False
) -> AuditRow:
    """A burst's row. `formatted` and `initial` are in change_data only when set, so rows
    without them are those written before they existed."""
    data: Json = {
        "inserted": burst.inserted,
        "deleted": burst.deleted,
        "paragraphs": burst.paragraphs,
        "updates": burst.updates,
        "first_offset": burst.first_offset,
        "last_offset": burst.last_offset,
        "duration_ms": burst.end_ms - burst.start_ms,
    }
    if burst.formatted:
        data["formatted"] = burst.formatted
    if initial:
        data["initial"] = True
    position = Position(topic, partition, burst.first_offset)
    return AuditRow(letter_id, user, "edit", data, burst.start_ms, position)
