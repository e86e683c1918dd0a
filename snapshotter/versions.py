"""Version policy (pure): when a letter gets a new `letter_version`, and its number.

- autosave: after `activity_ms` of editing (first update since the last version to the current
  one, in record time) or after `max_updates` updates, unless the content is identical to the
  last version's (then the counters simply restart);
- session-end: when the last collaborator leaves and something changed since the last version;
- named: on `version.saved`, always (a user asked for it).
Numbers are dense per letter: 1, 2, 3, ... Decisions depend only on the log's records.
"""

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    AUTOSAVE = "autosave"
    NAMED = "named"
    SESSION_END = "session-end"


@dataclass(frozen=True, slots=True)
class Policy:
    activity_ms: int
    max_updates: int


@dataclass(slots=True)
class VersionState:
    """Per-letter counters since the last version (persisted with the letter's state)."""

    last_number: int = 0
    last_digest: str = ""
    updates: int = 0
    activity_start_ms: int | None = None
    contributors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "VersionState":
        return cls(**data)


def record_update(state: VersionState, user: str, ts_ms: int) -> None:
    state.updates += 1
    if state.activity_start_ms is None:
        state.activity_start_ms = ts_ms
    if user not in state.contributors:
        state.contributors.append(user)


def autosave_due(state: VersionState, ts_ms: int, policy: Policy) -> bool:
    if state.updates >= policy.max_updates:
        return True
    start = state.activity_start_ms
    return start is not None and ts_ms - start >= policy.activity_ms


def should_cut(state: VersionState, kind: Kind, digest: str) -> bool:
    """Named versions always; the others only when the content differs from the last version."""
    return kind is Kind.NAMED or digest != state.last_digest


def cut(state: VersionState, kind: Kind, digest: str, label: str = "") -> dict[str, Any]:
    """Advance to the next version number; return its change_data and reset the counters."""
    state.last_number += 1
    change_data = {
        "type": kind.value,
        "label": label,
        "contributors": sorted(state.contributors),
        "updates": state.updates,
    }
    restart(state, digest)
    return change_data


def restart(state: VersionState, digest: str) -> None:
    """Start counting afresh from content `digest` (after a version, or a skipped identical one)."""
    state.last_digest = digest
    state.updates = 0
    state.activity_start_ms = None
    state.contributors = []
