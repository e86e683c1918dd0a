"""One letter's projected state, as the projector keeps it between batches.

`LetterState` is what `fold` produces and `store` persists: the Yjs document bytes and the log
positions folded into them, plus the JSON-able rest (meta, connections, awareness clients,
comments, recent edits, the ids of recently folded events). `presence` is derived from it.
"""

import json
from dataclasses import dataclass, field, fields
from typing import Any

EMPTY_DOC = b"\x00\x00"  # a Yjs v1 update with no structs and an empty delete set
SEEN_IDS = 128  # event ids remembered per letter for duplicate appends (see fold.dedup)
CLOSED_CONNS = 64  # recently closed connections whose late awareness is ignored

Json = dict[str, Any]


@dataclass
class LetterState:
    letter_id: str
    doc: bytes = EMPTY_DOC
    # `doc` carries no pending update (its fold said so); False: unknown (a version's state, a
    # state stored before this was kept). Set with `doc`, never alone.
    doc_clean: bool = False
    letters_offset: int = 0  # next offset of the letters partition folded in
    presence_offset: int = 0  # next offset of the presence partition folded in
    clock: int = 0  # ms: the newest envelope timestamp folded (the fold's "now")
    meta: dict[str, str] = field(default_factory=dict)
    connections: dict[str, Json] = field(default_factory=dict)  # conn id -> connection hash
    users: dict[str, Json] = field(default_factory=dict)  # user id -> {name, color}
    clients: dict[str, Json] = field(default_factory=dict)  # awareness client id -> entry
    activity: dict[str, Json] = field(default_factory=dict)  # user id -> {edit, seen} (ms)
    comments: dict[str, Json] = field(default_factory=dict)  # thread id -> thread
    recent: dict[str, Json] = field(default_factory=dict)  # paragraph index -> {userId, ...}
    notes: dict[str, Json] = field(default_factory=dict)  # "<userId>:<commentId>" (notes.py)
    seen: list[str] = field(default_factory=list)  # ids of recently folded non-Yjs events
    closed: list[str] = field(default_factory=list)  # recently closed connection ids

    def rest_json(self) -> str:
        """Everything but the document bytes, for the projector's own key."""
        rest = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "doc"}
        return json.dumps(rest, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_stored(cls, doc: bytes, rest: str | bytes) -> "LetterState":
        return cls(doc=doc, **json.loads(rest))
