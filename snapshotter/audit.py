"""Audit rows and edit coalescing (pure): "who changed what, when" without reading the log.

Edits are coalesced per session per burst: a connection's updates join its open burst while
each arrives within `window_ms` of the burst's last update, so two sessions of one user typing at
once (two tabs, a laptop and a phone) are two bursts, each row naming its connection
(`conn_id`). Updates made outside a session the letter holds (REST writes, each request its own
connection id) coalesce per user, with no `conn_id`, named by their records' `name` header (a REST
writer may never join: no `session-start` row names them). Time is the log's record timestamp,
never the wall clock, and an open burst is part of the persisted letter state, so a replay or a
restart after a crash produces the same rows. A burst closes, deterministically, when:
the same session edits after the window; any later record of the letter is past the window;
its session ends (a user's last session closes all their bursts; the last collaborator's,
all); a version is cut (every open burst: no row spans a version, so a version's edits are the
rows before it). The letter's initial content (the `doc.update` appended with its
`letter.created`) is a row of its own, marked `initial`, never part of its creator's typing.

change_type values: `letter.created`, `session-start`, `session-end`, `edit`, `version`, and the
event type itself for comment.* and lock.* events.
"""

import json
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
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
    """One session's run of edits to one letter (`conn` None: edits outside any session)."""

    first_offset: int
    last_offset: int
    start_ms: int
    end_ms: int
    inserted: int = 0
    deleted: int = 0
    updates: int = 0
    paragraphs: list[int] = field(default_factory=list)
    formatted: int = 0
    user: str = ""
    conn: str | None = None
    name: str = ""  # outside a session: the writer's, from its first named record

    @property
    def key(self) -> str:
        """Its key among a letter's open bursts (a JSON text: saved states key them by it)."""
        return burst_key(self.user, self.conn)

    def add(self, offset: int, ts_ms: int, delta: EditDelta) -> None:
        self.last_offset, self.end_ms = offset, max(self.end_ms, ts_ms)
        self.inserted += delta.inserted
        self.deleted += delta.deleted
        self.formatted += delta.formatted
        self.updates += 1
        if not delta.paragraphs.issubset(self.paragraphs):
            self.paragraphs = sorted(set(self.paragraphs) | delta.paragraphs)

    def to_json(self) -> Json:
        data: Json = {
            "first_offset": self.first_offset,
            "last_offset": self.last_offset,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "inserted": self.inserted,
            "deleted": self.deleted,
            "updates": self.updates,
            "paragraphs": self.paragraphs,
            "user": self.user,
        }
        if self.formatted:  # only when set (an older version loads no state with `user` anyway)
            data["formatted"] = self.formatted
        if self.conn is not None:
            data["conn"] = self.conn
        if self.name:  # only when set: states saved before it load as unnamed
            data["name"] = self.name
        return data

    @classmethod
    def from_json(cls, data: Json) -> "Burst":
        return cls(**data)


@lru_cache(maxsize=4096)  # json.dumps on every update was 7 % of a catch-up's fold
def burst_key(user: str, conn: str | None) -> str:
    return json.dumps([user, conn])


class Bursts:
    """The open bursts of one letter, keyed by `burst_key` (user and session)."""

    def __init__(self, window_ms: int, open_bursts: dict[str, Burst] | None = None) -> None:
        self.window_ms = window_ms
        self.open: dict[str, Burst] = {}
        for key, burst in (open_bursts or {}).items():
            if burst.key != key:
                # A state saved before sessions were told apart keys its bursts by user alone
                # (and they carry none): they go on as that user's edits outside a session.
                burst.user = key
            self.open[burst.key] = burst

    def edit(
        self,
        user: str,
        offset: int,
        ts_ms: int,
        delta: EditDelta,
        conn: str | None = None,
        name: str = "",
    ) -> Burst | None:
        """Add an edit of `user` in session `conn` (None: outside one), its record naming the
        writer `name` (""; none); return that session's previous burst when this edit starts a
        new one."""
        key = burst_key(user, conn)
        current = self.open.get(key)
        closed = None
        if current is not None and ts_ms - current.end_ms > self.window_ms:
            closed, current = self.open.pop(key), None
        if current is None:
            current = self.open[key] = Burst(offset, offset, ts_ms, ts_ms, user=user, conn=conn)
        current.add(offset, ts_ms, delta)
        if name and not current.name:
            current.name = name
        return closed

    def expire(self, now_ms: int) -> list[tuple[str, Burst]]:
        """Close the bursts that are past the window at record time `now_ms`."""
        stale = [k for k, b in self.open.items() if now_ms - b.end_ms > self.window_ms]
        return self._pop(stale) if stale else []  # asked of every record: mostly none

    def close(self, user: str | None = None) -> list[tuple[str, Burst]]:
        """Close one user's bursts (every session's), or all of them (user None)."""
        return self._pop([k for k, b in self.open.items() if user is None or b.user == user])

    def close_session(self, user: str, conn: str) -> list[tuple[str, Burst]]:
        """Close the burst of one session, if open."""
        key = burst_key(user, conn)
        return self._pop([key] if key in self.open else [])

    def _pop(self, keys: list[str]) -> list[tuple[str, Burst]]:
        """(user, burst) of each, removed, in key order (rows come out alike however batched)."""
        return [(b.user, b) for b in (self.open.pop(k) for k in sorted(keys))]


def edit_row(
    letter_id: str, topic: str, partition: int, user: str, burst: Burst, *, initial: bool = False
) -> AuditRow:
    """A burst's row. `formatted`, `initial`, `conn_id` (the session's connection) and `name`
    (the writer's, for edits outside a session) are in change_data only when set, so rows
    without them are those written before they existed (or, for `conn_id`, edits outside a
    session; for `name`, edits in one, or by records that carry none)."""
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
    if burst.conn is not None:
        data["conn_id"] = burst.conn
    if burst.name:
        data["name"] = burst.name
    position = Position(topic, partition, burst.first_offset)
    return AuditRow(letter_id, user, "edit", data, burst.start_ms, position)
