"""The snapshotter's working state of one letter, and its persisted form.

Everything a fold decision depends on lives here (document, version counters, open edit
bursts, open sessions, recently seen event ids, the letter's record clock) and is saved in the
same transaction as the rows it produced, so a restart continues exactly where it stopped.
"""

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from snapshotter.audit import Burst, Bursts
from snapshotter.document import LetterDocument
from snapshotter.versions import VersionState

# Duplicates come from append retries, which land close together: a short memory suffices.
RECENT_IDS = 256


@dataclass(slots=True)
class Session:
    user: str
    joined_ms: int


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
    _recent: set[str] = field(default_factory=set)  # recent_ids, for O(1) membership

    def seen(self, event_id: str) -> bool:
        """True for an event id seen recently; otherwise remember it."""
        if not self._recent and self.recent_ids:
            self._recent.update(self.recent_ids)
        if event_id in self._recent:
            return True
        if len(self.recent_ids) == RECENT_IDS:
            self._recent.discard(self.recent_ids[0])
        self.recent_ids.append(event_id)
        self._recent.add(event_id)
        return False

    def to_json(self) -> dict[str, Any]:
        return {
            "firm_id": self.firm_id,
            "versions": self.versions.to_json(),
            "bursts": {user: b.to_json() for user, b in self.bursts.open.items()},
            "sessions": {c: [s.user, s.joined_ms] for c, s in self.sessions.items()},
            "recent_ids": list(self.recent_ids),
            "clock_ms": self.clock_ms,
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
    ) -> "LetterState":
        bursts = {user: Burst.from_json(b) for user, b in data["bursts"].items()}
        return cls(
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
        )
