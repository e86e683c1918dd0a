"""Verify: replay the log and compare it with the projections (Redis and PostgreSQL).

Each projection says which log position it holds (`ydoc:<id>:offset`, `letter_version`'s
`log_offset`), so the comparison is exact even while the services run: the replay (from the log
alone, never from the projection being checked) stops at that same position. Documents are
compared by content (the snapshotter's rendering: text and ProseMirror JSON) and by Yjs state
vector; encodings may differ byte-wise while holding the same document.

Records a consumer quarantined (issue 9: its fold kept failing, so it was skipped) are listed
too: the projector's Redis hash `projector:quarantine` and the snapshotter's `quarantine` table.
Each one means that projection is known to lack a record of the log.
"""

import json
from dataclasses import dataclass
from typing import Any

from pycrdt import Doc

from schemas.events import LetterCreated
from schemas.keys import ydoc_key, ydoc_offset_key
from schemas.quarantine import QUARANTINE_KEY, QuarantinedRecord
from snapshotter import pgtext, read
from snapshotter.document import LetterDocument
from tools.replay import Cut, LetterNotFound, Replayed, exists, replay
from tools.sources import Sources
from tools.statevector import decode_state_vector


@dataclass(frozen=True, slots=True)
class Finding:
    letter_id: str
    store: str  # "redis" | "postgres"
    what: str
    ok: bool

    def line(self) -> str:
        mark = "ok      " if self.ok else "MISMATCH"
        return f"{mark} {self.letter_id} {self.store}: {self.what}"


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A log record a consumer skipped after its fold kept failing."""

    consumer: str  # "projector" (Redis) | "snapshotter" (PostgreSQL)
    record: QuarantinedRecord

    def line(self) -> str:
        r = self.record
        return (
            f"QUARANTINED {r.letter_id} {self.consumer}: {r.position} {r.event_type}"
            f" (skipped after {r.attempts} attempts: {r.error})"
        )


async def quarantined(src: Sources, letters: list[str] | None = None) -> list[Quarantined]:
    """The records the projector and snapshotter quarantined, of `letters` (None: all)."""
    found = []
    if src.redis is not None:
        for value in (await src.redis.hgetall(QUARANTINE_KEY)).values():
            found.append(
                Quarantined("projector", QuarantinedRecord.from_mapping(json.loads(value)))
            )
    if src.pg is not None and await src.pg.fetchval("SELECT to_regclass('quarantine')"):
        rows = await src.pg.fetch(
            "SELECT log_topic AS topic, log_partition AS partition, log_offset AS offset,"
            " letter_id, event_type, attempts, error FROM quarantine"
        )
        found += [Quarantined("snapshotter", QuarantinedRecord.from_mapping(row)) for row in rows]
    wanted = None if letters is None else set(letters)
    return sorted(
        (q for q in found if wanted is None or q.record.letter_id in wanted),
        key=lambda q: (q.record.topic, q.record.partition, q.record.offset, q.consumer),
    )


async def verify_letter(src: Sources, letter_id: str) -> list[Finding]:
    if not await exists(src, letter_id):
        raise LetterNotFound(letter_id)
    # The replay must not start from the version it checks: the log alone.
    log_only = Sources(src.settings, src.log)
    findings = []
    if src.redis is not None:
        findings += await _redis(src, log_only, letter_id)
    if src.pg is not None:
        findings += await _postgres(src, log_only, letter_id)
    return findings


async def _redis(src: Sources, log_only: Sources, letter_id: str) -> list[Finding]:
    assert src.redis is not None
    state, offset = await src.redis.mget(ydoc_key(letter_id), ydoc_offset_key(letter_id))
    if state is None or offset is None:
        return [Finding(letter_id, "redis", "not in Redis (expired or not projected yet)", True)]
    replayed = await replay(log_only, letter_id, Cut(offset=int(offset)))
    problems = _compare(src.settings.doc_field, _bytes(state), None, replayed)
    what = f"ydoc at position {int(offset)}"
    return [Finding(letter_id, "redis", f"{what}: {p}", False) for p in problems] or [
        Finding(letter_id, "redis", f"{what} equals the replay", True)
    ]


async def _postgres(src: Sources, log_only: Sources, letter_id: str) -> list[Finding]:
    version = await read.latest_version(src.pg, letter_id)
    if version is None:
        return [Finding(letter_id, "postgres", "no letter_version yet", True)]
    replayed = await replay(log_only, letter_id, Cut(offset=version.log_offset))
    problems = _compare(src.settings.doc_field, version.ydoc_state, version, replayed)
    what = f"version {version.version_number} at position {version.log_offset}"
    return [Finding(letter_id, "postgres", f"{what}: {p}", False) for p in problems] or [
        Finding(letter_id, "postgres", f"{what} equals the replay", True)
    ]


def _compare(
    field: str, state: bytes, version: read.Version | None, replayed: Replayed
) -> list[str]:
    want = replayed.snapshot
    try:
        Doc().apply_update(state)
    except ValueError as exc:
        return [f"stored Yjs state does not decode ({exc})"]
    got = LetterDocument(field, state).snapshot()
    problems = []
    if got.content != want.content:
        problems.append(f"Yjs state text differs: {_excerpt(got.content, want.content)}")
    elif got.document != want.document:
        problems.append("Yjs state document (formatting/structure) differs")
    if _vector(state) != _vector(replayed.state):
        problems.append("Yjs state vector differs (missing or extra updates)")
    if version is not None:  # the columns hold U+0000 as U+FFFD (snapshotter/pgtext.py)
        if version.content != pgtext.text(want.content):
            problems.append(f"content column differs: {_excerpt(version.content, want.content)}")
        if version.document != pgtext.stored(want.document):
            problems.append("document column differs")
    return problems


def _vector(state: bytes) -> dict[int, int]:
    doc: Doc[Any] = Doc()
    doc.apply_update(state)
    return decode_state_vector(doc.get_state())


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


def _excerpt(got: str, want: str) -> str:
    i = next(
        (i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b),
        min(len(got), len(want)),
    )
    stored, logged = json.dumps(got[i : i + 30]), json.dumps(want[i : i + 30])
    return f"stored {stored} where the log has {logged}"


async def all_letters(src: Sources) -> list[str]:
    """Every letter the log knows: the keys of its `letter.created` records."""
    topic, found = src.letters_topic, []
    for partition, end in sorted((await src.log.end_offsets(topic)).items()):
        offset = (await src.log.start_offsets(topic)).get(partition, 0)
        while offset < end:
            records = await src.log.read(topic, partition, offset, 1000)
            if not records:
                break
            for r in records:
                if ("type", b"letter.created") in r.headers:
                    try:
                        found.append(LetterCreated.model_validate_json(r.value).letter_id)
                    except ValueError:
                        continue
            offset = records[-1].offset + 1
    return found
