"""The snapshotter's working state of one letter, and its persisted form.

Everything a fold decision depends on lives here (document, version counters, open edit
bursts, open sessions, recently seen event ids, the letter's record clock). It is saved (a
`snapshotter_letter_state` row) only now and then, not with every batch: the row records
`covers`, the offset after the last record of the letter folded into it, and a restart (or a
reload after eviction) folds the letter's records from there to the committed position again,
rebuilding the state without writing their rows twice (`fold.Folder.catch_up`). The state
depends only on the letter's own records, so the rebuilt state equals the lost one.
"""

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from eventlog.records import Record
from snapshotter.audit import Burst, Bursts, Position
from snapshotter.document import LetterDocument
from snapshotter.versions import VersionState

# Duplicates come from appends made again, each copy after the whole first one: a short
# memory of ids suffices, of the letter's last records (updates included)...
RECENT_IDS = 256
# ... and, apart, of its last other events: a gateway's rescue appends again an unconfirmed
# append that may hold thousands of updates before the sessions' ends (a stall with people
# typing), and a repeated update is harmless (an empty delta), the others are not (a second
# audit row, version, or session).
RECENT_EVENTS = 256


@dataclass(slots=True)
class Session:
    user: str
    joined_ms: int


@dataclass(frozen=True, slots=True)
class PendingEnd:
    """A session-end version put off: the letter's last session ended with its gateway's drain
    (`fold.Folder._left`). Cut as of that record, by the letter's next record unless it is a
    rejoin."""

    user: str
    position: Position  # the session.left record's
    timestamp_ms: int

    def to_json(self) -> list[Any]:
        p = self.position
        return [self.user, p.topic, p.partition, p.offset, self.timestamp_ms]

    @classmethod
    def from_json(cls, data: list[Any] | None) -> "PendingEnd | None":
        if data is None:
            return None
        user, topic, partition, offset, timestamp_ms = data
        return cls(user, Position(topic, partition, offset), timestamp_ms)


@dataclass(slots=True)
class LetterState:
    letter_id: str
    topic: str
    partition: int
    firm_id: str
    doc: LetterDocument
    bursts: Bursts
    versions: VersionState = field(default_factory=VersionState)
    sessions: dict[str, Session] = field(default_factory=dict)
    recent_ids: deque[str] = field(default_factory=lambda: deque(maxlen=RECENT_IDS))
    clock_ms: int = 0
    pending_end: PendingEnd | None = None
    # The save bookkeeping below is set by `restore`, `folded` and `saved` only.
    covers: int = 0  # offset after the last record of this letter folded in
    # Folded since the last scheduled save (`fold.Folder` decides saves by them): records and
    # their bytes. Saved with the state, so that save points depend only on the log.
    unsaved_records: int = 0
    unsaved_bytes: int = 0
    recent_events: deque[str] = field(default_factory=lambda: deque(maxlen=RECENT_EVENTS))
    # Whether its `letter.created` carries INITIAL_HEADER: its creation marks the content it
    # was created with, so no unmarked update is taken for it (`fold._created_with`).
    marks_initial: bool = False
    _recent: set[str] = field(default_factory=set)  # recent_ids, for O(1) membership
    _events: set[str] = field(default_factory=set)  # recent_events, likewise
    # `covers` of the row in the database (None: none yet, or one from before `covers` was
    # saved, which must be replaced with the next commit), and when (time.monotonic) a record
    # was first folded past it: in memory only.
    saved_covers: int | None = None
    unsaved_since: float | None = None
    # The offset of the first record folded past the row (None: none), as `snapshotter_unsaved`
    # keeps it for a restart; a loaded state with one has records to fold again from there.
    unsaved_from: int | None = None

    @property
    def unsaved(self) -> bool:
        return self.saved_covers != self.covers

    def folded(self, record: Record) -> float | None:
        """Count `record` as folded in; if it is the first folded past the saved row, returns
        `unsaved_since`, set now."""
        self.covers = record.offset + 1
        self.unsaved_records += 1
        self.unsaved_bytes += len(record.value)
        if self.unsaved_from is None:
            self.unsaved_from = record.offset
        if self.unsaved_since is not None:
            return None
        self.unsaved_since = time.monotonic()
        return self.unsaved_since

    def saved(self, *, scheduled: bool = False) -> None:
        """The state is saved as it is now; a `scheduled` save (by the record and byte
        counts, a version, the creation) starts those counts again."""
        if scheduled:
            self.unsaved_records = self.unsaved_bytes = 0
        self.saved_covers, self.unsaved_since, self.unsaved_from = self.covers, None, None

    def seen(self, event_id: str, update: bool = False) -> bool:
        """True for an event id seen recently; otherwise remember it (among the other events'
        too unless it is a document `update`)."""
        if not self._recent and self.recent_ids:
            self._recent.update(self.recent_ids)
        if not self._events and self.recent_events:
            self._events.update(self.recent_events)
        if event_id in self._recent or event_id in self._events:
            return True
        _remember(self.recent_ids, self._recent, event_id)
        if not update:
            _remember(self.recent_events, self._events, event_id)
        return False

    def to_json(self) -> dict[str, Any]:
        return {
            "firm_id": self.firm_id,
            "versions": self.versions.to_json(),
            "bursts": {user: b.to_json() for user, b in self.bursts.open.items()},
            "sessions": {c: [s.user, s.joined_ms] for c, s in self.sessions.items()},
            "recent_ids": list(self.recent_ids),
            "recent_events": list(self.recent_events),
            "clock_ms": self.clock_ms,
            "pending_end": None if self.pending_end is None else self.pending_end.to_json(),
            "marks_initial": self.marks_initial,
            "covers": self.covers,
            "unsaved": [self.unsaved_records, self.unsaved_bytes],
        }

    @classmethod
    def restore(
        cls,
        letter_id: str,
        topic: str,
        partition: int,
        ydoc: bytes,
        data: dict[str, Any],
        *,
        field_name: str,
        window_ms: int,
        unsaved_from: int | None = None,
        committed: int = 0,
    ) -> "LetterState":
        """A saved state, lagging its records from `unsaved_from` if not None. One saved
        before `covers` existed (with every commit then) is taken to cover `committed`, and
        keeps `saved_covers` None, so that the next commit saves it."""
        bursts = {user: Burst.from_json(b) for user, b in data["bursts"].items()}
        records, size = data.get("unsaved", (0, 0))
        covers = data.get("covers")
        state = cls(
            letter_id,
            topic,
            partition,
            data["firm_id"],
            LetterDocument(field_name, ydoc),
            Bursts(window_ms, bursts),
            VersionState.from_json(data["versions"]),
            {c: Session(u, ts) for c, (u, ts) in data["sessions"].items()},
            deque(data["recent_ids"], maxlen=RECENT_IDS),
            data["clock_ms"],
            PendingEnd.from_json(data.get("pending_end")),
            committed if covers is None else covers,
            records,
            size,
            deque(data.get("recent_events", ()), maxlen=RECENT_EVENTS),  # none in older rows
        )
        state.saved_covers, state.unsaved_from = covers, unsaved_from
        state.marks_initial = data.get("marks_initial", False)  # none in older rows
        return state


def _remember(ids: "deque[str]", members: set[str], event_id: str) -> None:
    if len(ids) == ids.maxlen:
        members.discard(ids[0])
    ids.append(event_id)
    members.add(event_id)
