"""Verify: replay the log and compare it with the projections (Redis and PostgreSQL).

Each projection says which log position it holds (`ydoc:<id>:offset`, each `letter_version`'s
`log_offset`, the snapshotter's committed position for its audit trail and comments), so the
comparison is exact even while the services run: the log (alone, never the projection being
checked) is folded once per letter by the consumers' own folds (`verify_fold`) and taken at
those same positions. Every version is checked, not only the latest: a replay starts from any
of them, so a forged older version would otherwise be served as the truth. Documents are
compared by content (the snapshotter's rendering: text and ProseMirror JSON) and by Yjs state
vector; encodings may differ byte-wise while holding the same document.

Every row the readers show is checked (`history`, `GET .../versions/{n}` and the gateway's
letter list read a letter's rows whatever log position they claim): one claiming another topic
or partition than the letter's, or a position past its partition's end (as Redis's offset can),
or a negative one, is a mismatch, not left out. The `letters` row (firm, title, creator,
creation time and position) is compared with the one the snapshotter's fold writes from
`letter.created`, and so is Redis's `letter:<id>:meta` with the one the projector's fold writes:
the gateway's access checks trust the firm of either. Times are printed as ISO-8601 UTC
(`tools.timefmt.iso`), compared to the millisecond.

A letter's versions are read from PostgreSQL without their documents first; their documents
(Yjs state, text, JSON) are read `VERSIONS_PAGE` at a time as the fold passes their positions,
in the one snapshot: a letter with thousands of versions is not held in memory at once.

Records a consumer quarantined (issue 9: its fold kept failing, so it was skipped) are listed
too: the projector's Redis hash `projector:quarantine` and the snapshotter's `quarantine` table.
Each one means that projection is known to lack a record of the log.
"""

import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from pycrdt import Doc

from projector.store import views
from schemas.events import SNAPSHOTTER_GROUP, LetterCreated
from schemas.keys import (
    comments_key,
    meta_key,
    projector_position_key,
    ydoc_key,
    ydoc_offset_key,
)
from schemas.quarantine import QUARANTINE_KEY, QuarantinedRecord
from schemas.rebuilds import (
    LETTERS_JOBS,
    MARKER_GROUP,
    PROJECTOR_REPLAYS,
    PROJECTOR_RESET,
    SNAPSHOTTER_RESET,
    snapshotter_position,
)
from snapshotter import pgtext, read
from snapshotter.document import LetterDocument
from snapshotter.store import write_comment  # the snapshotter's own SQL
from tools.replay import LetterNotFound, exists
from tools.sources import Sources
from tools.statevector import decode_state_vector
from tools.timefmt import EPOCH, iso
from tools.verify_fold import Folded, fold_letter_log

Json = dict[str, Any]
VERSIONS_PAGE = 20  # versions' documents read at once (each a whole Yjs state, text and JSON)


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


async def unfinished(src: Sources) -> list[str]:
    """Rebuilds that have not finished (interrupted, or still running): what a store holds
    then is part of the log, which a letter's comparison "up to its position" cannot tell from
    a store that is whole. One line each, with what to do."""
    found = []
    topic = src.letters_topic
    starts, ends = await src.log.start_offsets(topic), await src.log.end_offsets(topic)
    # Partitions holding records: a store that has folded none of one is not whole.
    held = [p for p, end in sorted(ends.items()) if end > starts.get(p, 0)]
    if src.redis is not None:
        if (state := await src.redis.get(PROJECTOR_RESET)) is not None:
            found.append(
                f"UNFINISHED redis: a projector reset rebuild ({_text(state)}) did not finish:"
                " run `steno-collab backfill projector` (continues it) to the end"
            )
        for field, target in sorted((await src.redis.hgetall(PROJECTOR_REPLAYS)).items()):
            found.append(
                f"UNFINISHED redis: the projector is replaying {_text(field)} up to offset"
                f" {_text(target)}: verify again once it has caught up"
            )
        # Positions have no TTL (a letter's keys do): with none, a letter missing from Redis
        # was never folded (Redis wiped, or the projector never ran), not expired.
        if held and state is None:  # a reset (positions wiped) is named above
            keys = [projector_position_key(topic, p) for p in held]
            for partition, position in zip(held, await src.redis.mget(keys), strict=True):
                if position is None:
                    found.append(
                        f"UNFINISHED redis: the projector has folded nothing of {topic}/"
                        f"{partition} yet (Redis wiped, or never projected): run the projector"
                        " or `steno-collab backfill projector`"
                    )
    if src.pg is not None and await src.pg.fetchval("SELECT to_regclass('consumer_positions')"):
        # The tools' group's snapshotter reset row only (`backfill all --reset` marks its own
        # progress there too: tools/backfill.py ALL_RESET, no rebuild of a store's).
        rows = await src.pg.fetch(
            "SELECT consumer_group FROM consumer_positions WHERE consumer_group = $1"
            " AND topic = $3 AND partition = $4 OR starts_with(consumer_group, $2)",
            MARKER_GROUP,
            LETTERS_JOBS,
            *SNAPSHOTTER_RESET,
        )
        groups = sorted({row["consumer_group"] for row in rows})
        # A letters job marked before `letters_jobs` recorded its letters: its own letters only.
        unrecorded = set()
        if await src.pg.fetchval("SELECT to_regclass('letters_jobs')"):
            recorded = await src.pg.fetch("SELECT consumer_group FROM letters_jobs")
            unrecorded = set(groups) - {row["consumer_group"] for row in recorded}
        for group in groups:
            what, again = (
                ("a reset", "run the same `steno-collab backfill snapshotter` command again")
                if group == MARKER_GROUP
                else (
                    "a rebuild of chosen letters",
                    "run its `steno-collab backfill snapshotter --letters` command again with"
                    " the same letters"
                    if group in unrecorded
                    else "run any `steno-collab backfill snapshotter` (it finishes this one first)",
                )
            )
            found.append(
                f"UNFINISHED postgres: {what} of the snapshotter's tables ({group}) did not"
                f" finish: {again}"
            )
        folded = {
            row["partition"]
            for row in await src.pg.fetch(
                "SELECT partition FROM consumer_positions WHERE consumer_group = $1 AND topic = $2",
                SNAPSHOTTER_GROUP,
                topic,
            )
        }
        # A reset's tables and positions were emptied together: its line above says it all.
        resetting = MARKER_GROUP in groups
        for partition in held:
            if partition not in folded and not resetting:
                found.append(
                    f"UNFINISHED postgres: the snapshotter has folded nothing of {topic}/"
                    f"{partition} yet (a database made again?): run the snapshotter or"
                    " `steno-collab backfill snapshotter`"
                )
    return found


async def verify_letter(src: Sources, letter_id: str) -> list[Finding]:
    """Redis's document, threads and meta hash, and every PostgreSQL row of the letter (its
    `letters` row, each version, the audit trail, the materialised comments), against the log
    folded once (`verify_fold`)."""
    if not await exists(src, letter_id):
        raise LetterNotFound(letter_id)
    # Never from the projections being checked: the log alone.
    redis, meta = await _redis_now(src, letter_id) if src.redis is not None else (None, {})
    async with _snapshot(src) as conn:
        stored = await _postgres_now(src, conn, letter_id) if conn is not None else None
        # Read after the projections: any position they held then is at most this.
        log = _Log(src, letter_id, (await src.log.end_offsets(src.letters_topic)))
        # The documents are checked as the fold passes their positions (states are not kept).
        field_name, documents = src.settings.doc_field, dict[int, list[Finding]]()
        ours = [v for v in ([] if stored is None else stored.versions) if log.holds_version(v)]
        states = _States(conn, letter_id, ours)
        positions = {v.log_offset for v in ours}
        # Redis's position, when it is one of this log's (else a mismatch: `_redis`).
        at = None if redis is None or log.outside(redis.offset, log.end) else redis.offset
        if at is not None:
            positions.add(at)

        async def doc_at(position: int, state: bytes) -> None:
            replayed = _Replayed(state, field_name)
            found = [f async for v in states.at(position) for f in _version_state(v, replayed)]
            if redis is not None and at == position:
                found += _redis_state(letter_id, redis, replayed)
            # Keyed by position: a fold that starts again (a poison record) reports it again.
            documents[position] = found

        folded = await fold_letter_log(
            src,
            letter_id,
            positions,
            doc_at,
            None if stored is None else stored.committed,
            # A meta hash without a usable position is checked all the same: its one source is
            # the letter's `letter.created`, so the fold to the log's end gives it.
            at if at is not None or not meta else log.end,
            () if stored is None else stored.quarantined,
        )
    checked = [f for _, found in sorted(documents.items()) for f in found]
    findings = [f for f in checked if f.store == "redis"]
    if src.redis is not None:
        findings += _redis(letter_id, redis, folded, log)
        findings += _meta(letter_id, meta, redis, at, folded)
    if stored is not None:
        states_found = [f for f in checked if f.store == "postgres"]
        findings += _letter(letter_id, stored, folded)
        findings += _versions(log, stored, folded, states_found)
        findings += _audit(log, stored, folded)
        findings += await _comments(src, letter_id, stored, folded)
    return _merged(letter_id, findings)


class _Log:
    """The letter's log: its topic and partition, and that partition's end when verify began.
    A stored row claiming a position elsewhere, or past that end, is not of this log: the
    readers (history, versions) show it all the same, so it is a mismatch, never skipped."""

    def __init__(self, src: Sources, letter_id: str, ends: dict[int, int]) -> None:
        self.letter_id, self.topic = letter_id, src.letters_topic
        self.partition = src.partition_of(letter_id)
        self.end = ends.get(self.partition, 0)

    def name(self, topic: str, partition: int) -> str:
        return f"partition {partition} of {topic}"

    def elsewhere(self, topic: str, partition: int, offset: int, last: int) -> str | None:
        """Why a row at `offset` of `topic`/`partition` cannot be of this log (`last`: the
        highest offset of it such a row can hold), or None."""
        if (topic, partition) != (self.topic, self.partition):
            here = self.name(self.topic, self.partition)
            return f"claims {self.name(topic, partition)}, not this letter's log ({here})"
        return self.outside(offset, last)

    def outside(self, offset: int, last: int) -> str | None:
        """Why `offset` is no position of this partition (`last`: the highest one a row of its
        kind can hold), or None."""
        if offset < 0:
            return "is negative: no log position is"
        if offset > last:
            return f"is past the end of its partition ({self.ends()})"
        return None

    def ends(self) -> str:
        return f"{self.name(self.topic, self.partition)} ends at {self.end}"

    def holds_version(self, v: "_StoredVersion") -> bool:
        # A version's position is the next offset folded in: at most the end.
        return self.elsewhere(v.log_topic, v.log_partition, v.log_offset, self.end) is None


def _merged(letter_id: str, findings: list[Finding]) -> list[Finding]:
    """Per store, its mismatches, or one ok line saying all it checked."""
    out = []
    for store in dict.fromkeys(f.store for f in findings):
        of_store = [f for f in findings if f.store == store]
        bad = [f for f in of_store if not f.ok]
        out += bad or [Finding(letter_id, store, "; ".join(f.what for f in of_store), True)]
    return out


# -- Redis -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _InRedis:
    state: bytes
    offset: int
    comments: bytes | None


async def _redis_now(src: Sources, letter_id: str) -> tuple[_InRedis | None, dict[str, str]]:
    """The document with its position and threads (None: no document), and the meta hash ({}:
    none), read in one transaction: the projector writes them together."""
    assert src.redis is not None
    keys = ydoc_key(letter_id), ydoc_offset_key(letter_id), comments_key(letter_id)
    async with src.redis.pipeline(transaction=True) as pipe:
        pipe.mget(keys)
        pipe.hgetall(meta_key(letter_id))
        (state, offset, comments), hash_ = await pipe.execute()
    meta = {_text(k): _text(v) for k, v in hash_.items()}
    if state is None or offset is None:
        return None, meta
    found = _InRedis(_bytes(state), int(offset), None if comments is None else _bytes(comments))
    return found, meta


def _redis_state(letter_id: str, redis: _InRedis, replayed: "_Replayed") -> list[Finding]:
    problems = _compare(replayed.field_name, redis.state, None, replayed)
    what = f"ydoc at position {redis.offset}"
    return [Finding(letter_id, "redis", f"{what}: {p}", False) for p in problems] or [
        Finding(letter_id, "redis", f"{what} equals the replay", True)
    ]


def _redis(letter_id: str, redis: _InRedis | None, folded: Folded, log: _Log) -> list[Finding]:
    """The threads (`comments:<id>`); the document was checked as the fold passed it, unless
    its position is past the log's end (no fold reaches it)."""
    if redis is None:
        return [Finding(letter_id, "redis", "not in Redis (expired or not projected yet)", True)]
    if (why := log.outside(redis.offset, log.end)) is not None:
        what = f"{ydoc_offset_key(letter_id)} {redis.offset} {why}"
        return [Finding(letter_id, "redis", what, False)]
    assert folded.projector is not None
    want = {t["thread_id"]: t for t in json.loads(views(folded.projector).comments)}
    got = {t.get("thread_id"): t for t in _threads(redis.comments)}
    what = f"{comments_key(letter_id)} at position {redis.offset}"
    problems = _differences("thread", got, want)
    return [Finding(letter_id, "redis", f"{what}: {p}", False) for p in problems] or [
        Finding(letter_id, "redis", f"{what}: {len(want)} thread(s) equal the log's", True)
    ]


def _meta(
    letter_id: str, meta: dict[str, str], redis: _InRedis | None, at: int | None, folded: Folded
) -> list[Finding]:
    """`letter:<id>:meta` (the gateway's access checks trust its firm) against the hash the
    projector's fold writes from `letter.created`: at Redis's position `at`, or, for a hash
    without a document there (a reset's wipe under way, or tampering), at the log's end."""
    if folded.projector is None:
        return []  # no hash, and no position saying the projector passed the letter's creation
    key, want = meta_key(letter_id), views(folded.projector).meta
    if not meta:
        if at is None or not want:
            return []  # not reached (the ydoc lines say how far it is)
        what = (
            f"{key} missing ({ydoc_key(letter_id)} is at position {at}, past the letter's creation)"
        )
        return [Finding(letter_id, "redis", what, False)]
    label = key  # a document at no position of this log: said by `_redis`
    if at is not None:
        label = f"{key} at position {at}"
    elif redis is None:
        label = f"{key} ({ydoc_key(letter_id)} not in Redis)"
    problems = []
    for name in sorted(meta.keys() | want.keys()):
        got, logged = meta.get(name), want.get(name)
        if got == logged:
            continue
        if got is None:
            problems.append(f"{name} missing where the log has {_meta_value(name, logged)}")
        else:
            has = "none" if logged is None else _meta_value(name, logged)
            problems.append(f"{name} stored {_meta_value(name, got)} where the log has {has}")
    return [Finding(letter_id, "redis", f"{label}: {p}", False) for p in problems] or [
        Finding(letter_id, "redis", f"{label} equals the log's letter.created", True)
    ]


def _meta_value(name: str, value: str | None) -> str:
    """A meta field as the other lines show values; its creation time (epoch ms) in ISO."""
    if name == "created_at" and value is not None and value.isascii() and value.isdigit():
        return _show(iso(int(value)))
    return _show(value)


def _threads(value: bytes | None) -> list[Json]:
    try:
        threads = json.loads(value or b"[]")
    except ValueError:
        return [{"thread_id": None, "unreadable": True}]
    return [t for t in threads if isinstance(t, dict)] if isinstance(threads, list) else []


# -- PostgreSQL ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _StoredVersion:
    """A `letter_version` row but its document (Yjs state, text, JSON): read by `_States`."""

    version_number: int
    log_topic: str
    log_partition: int
    log_offset: int
    change_data: Json
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class _InPostgres:
    """The letter's rows and the snapshotter's position, read in one snapshot: the rows are
    exactly those of the records below `committed` (they commit together)."""

    committed: int
    letter: Any  # its `letters` row, None when there is none
    versions: list[_StoredVersion]
    audit: list[Any]
    threads: list[Any]
    comments: list[Any]
    quarantined: set[int]


@contextlib.asynccontextmanager
async def _snapshot(src: Sources) -> AsyncIterator[Any]:
    """A connection in one repeatable-read transaction for all of a letter's rows, documents
    included (read while the fold runs); None without PostgreSQL."""
    if src.pg is None:
        yield None
        return
    async with src.pg.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        yield conn


async def _postgres_now(src: Sources, conn: Any, letter_id: str) -> _InPostgres:
    topic, partition = src.letters_topic, src.partition_of(letter_id)
    committed = await snapshotter_position(conn, topic, partition)
    letter = await conn.fetchrow(
        "SELECT firm_id, title, created_by, created_at, log_topic, log_partition, log_offset"
        " FROM letters WHERE letter_id = $1",
        letter_id,
    )
    versions = await conn.fetch(
        "SELECT version_number, log_topic, log_partition, log_offset,"
        " change_data::text AS change_data, created_at FROM letter_version"
        " WHERE letter_id = $1 ORDER BY version_number",
        letter_id,
    )
    audit = await conn.fetch(
        'SELECT id, user_id, change_type, change_data::text AS data, "timestamp",'
        " log_topic, log_partition, log_offset FROM collaboration WHERE letter_id = $1",
        letter_id,
    )
    threads = await conn.fetch(_THREADS.format(table="comment_threads"), letter_id)
    comments = await conn.fetch(_COMMENTS.format(table="comments"), letter_id)
    skipped = set()
    if await conn.fetchval("SELECT to_regclass('quarantine')"):
        skipped = {
            r["log_offset"]
            for r in await conn.fetch(
                "SELECT log_offset FROM quarantine WHERE consumer = 'snapshotter'"
                " AND log_topic = $1 AND log_partition = $2",
                topic,
                partition,
            )
        }
    return _InPostgres(
        committed or 0,
        letter,
        [
            _StoredVersion(**{**row, "change_data": json.loads(row["change_data"])})
            for row in versions
        ],
        audit,
        threads,
        comments,
        skipped,
    )


_THREADS = "SELECT * FROM {table} WHERE letter_id = $1"
_COMMENTS = "SELECT * FROM {table} WHERE letter_id = $1"
_DOCUMENTS = (
    "SELECT letter_id, version_number, content, document::text AS document, ydoc_state,"
    " log_topic, log_partition, log_offset, change_data::text AS change_data, created_at"
    " FROM letter_version WHERE letter_id = $1 AND version_number = ANY($2::int[])"
)


def _version(row: Any) -> read.Version:
    values = dict(row)
    values["document"] = json.loads(values["document"])
    values["change_data"] = json.loads(values["change_data"])
    return read.Version(**values)


class _States:
    """The versions' documents, read `VERSIONS_PAGE` at a time in the order the fold passes
    their positions (a stored position may be out of order: a forged row), so that one page of
    them is in memory, not every version of the letter."""

    def __init__(self, conn: Any, letter_id: str, versions: list[_StoredVersion]) -> None:
        self._conn, self._letter_id = conn, letter_id
        self._order = sorted((v.log_offset, v.version_number) for v in versions)
        self._next = 0  # index in `_order` of the next version handed out
        self._page: dict[int, read.Version] = {}

    async def at(self, position: int) -> AsyncIterator[read.Version]:
        """The versions at `position`, by number; positions are asked for in order."""
        if self._next and self._order[self._next - 1][0] >= position:
            self._next, self._page = 0, {}  # the fold started again (a poison record)
        while self._next < len(self._order) and self._order[self._next][0] <= position:
            offset, number = self._order[self._next]
            if number not in self._page:
                self._page = await self._read(self._order[self._next : self._next + VERSIONS_PAGE])
            self._next += 1
            version = self._page.pop(number)
            if offset == position:
                yield version

    async def _read(self, page: list[tuple[int, int]]) -> dict[int, read.Version]:
        rows = await self._conn.fetch(_DOCUMENTS, self._letter_id, [n for _, n in page])
        return {row["version_number"]: _version(row) for row in rows}


def _version_state(v: read.Version, replayed: "_Replayed") -> list[Finding]:
    """A version's Yjs state and columns against the log folded to its position: a replay
    starts from any version, so each must hold exactly that."""
    what = f"version {v.version_number} at position {v.log_offset}"
    return [
        Finding(v.letter_id, "postgres", f"{what}: {p}", False)
        for p in _compare(replayed.field_name, v.ydoc_state, v, replayed)
    ]


def _versions(
    log: _Log, stored: _InPostgres, folded: Folded, states: list[Finding]
) -> list[Finding]:
    """Every stored version (all are served) against those the snapshotter's fold cuts, after
    the mismatches of their states (`_version_state`); one ok line when all of it agrees."""
    letter_id, found = log.letter_id, list(states)
    cut = {row.number: row for row in folded.versions}
    by_number = {v.version_number: v for v in stored.versions}
    for v in stored.versions:
        if (why := log.elsewhere(v.log_topic, v.log_partition, v.log_offset, log.end)) is not None:
            what = f"version {v.version_number} at position {v.log_offset} {why}"
            found.append(Finding(letter_id, "postgres", what, False))
    ours = {v.version_number: v for v in stored.versions if log.holds_version(v)}
    for number, row in sorted(cut.items()):
        what = f"version {number}"
        if number not in by_number:
            found.append(
                Finding(letter_id, "postgres", f"{what} missing (the log cuts it at position"
                        f" {row.offset})", False)
            )  # fmt: skip
            continue
        if number not in ours:
            continue  # its row claims another position: said above
        v = ours[number]
        got = (v.log_offset, v.change_data, _iso(v.created_at))
        want = (row.offset, _stored_json(row.change_data), iso(row.created_ms))
        for name, a, b in zip(("log_offset", "change_data", "created_at"), got, want, strict=True):
            if a != b:
                found.append(
                    Finding(letter_id, "postgres", f"{what}: {name} stored {_show(a)} where"
                            f" the log has {_show(b)}", False)
                )  # fmt: skip
    for number in sorted(ours.keys() - cut.keys()):
        what = f"version {number} at position {ours[number].log_offset}"
        found.append(Finding(letter_id, "postgres", f"{what} is not cut by the log", False))
    if not found:
        latest = max(ours.values(), key=lambda v: v.version_number, default=None)
        what = (
            "no letter_version yet"
            if latest is None
            else f"{len(ours)} version(s) equal the replay at their positions (latest: version"
            f" {latest.version_number} at position {latest.log_offset})"
        )
        found.append(Finding(letter_id, "postgres", what, True))
    return found


def _letter(letter_id: str, stored: _InPostgres, folded: Folded) -> list[Finding]:
    """The `letters` row (the gateway lists a firm's letters from it, titles included) against
    the one the snapshotter's fold writes from the `letter.created` record, once committed."""
    want, row = folded.letter, stored.letter
    if want is None and row is None:
        return [Finding(letter_id, "postgres", "no letters row yet", True)]
    if row is None:
        return [Finding(letter_id, "postgres", "letters row missing", False)]
    if want is None:
        what = f"letters row is not in the log below the snapshotter's position {stored.committed}"
        return [Finding(letter_id, "postgres", what, False)]
    got = dict(row)
    got["created_at"] = _iso(got["created_at"])
    logged = {
        "firm_id": pgtext.text(want.firm_id),
        "title": pgtext.text(want.title),
        "created_by": pgtext.text(want.created_by),
        "created_at": iso(want.created_ms),
        "log_topic": want.position.topic,
        "log_partition": want.position.partition,
        "log_offset": want.position.offset,
    }
    problems = [
        Finding(letter_id, "postgres", f"letters row: {name} stored {_show(got[name])} where"
                f" the log has {_show(value)}", False)
        for name, value in logged.items()
        if got[name] != value
    ]  # fmt: skip
    return problems or [Finding(letter_id, "postgres", "letters row equals the log's", True)]


def _audit(log: _Log, stored: _InPostgres, folded: Folded) -> list[Finding]:
    """Every `collaboration` row (all are shown by history) against those the snapshotter's
    fold yields from the records it committed (a burst still open at that position has no row
    yet, in either)."""
    letter_id, found = log.letter_id, []
    ours = []
    for r in stored.audit:
        # An audit row is at its record's offset: below the end.
        why = log.elsewhere(r["log_topic"], r["log_partition"], r["log_offset"], log.end - 1)
        if why is None:
            ours.append(r)
        else:
            what = f"audit {r['change_type']} row at position {r['log_offset']} {why}"
            found.append(Finding(letter_id, "postgres", what, False))
    want = {
        (a.position.offset, a.change_type): (
            str(a.id),
            pgtext.text(a.user_id),
            _stored_json(a.change_data),
            iso(a.timestamp_ms),
        )
        for a in folded.audit
    }
    got = {
        (r["log_offset"], r["change_type"]): (
            str(r["id"]),
            r["user_id"],
            json.loads(r["data"]),
            _iso(r["timestamp"]),
        )
        for r in ours
    }
    legacy = _legacy_edits(got, want)
    unsessioned = set[int]()  # offsets of edit rows that differ, told as one legacy finding
    for key in sorted(want.keys() | got.keys()):
        offset, kind = key
        what = f"audit {kind} row at position {offset}"
        problems = []
        if key not in got:
            problems.append(f"{what} missing")
        elif key not in want:
            problems.append(f"{what} is not in the log")
        else:
            for name, a, b in zip(_AUDIT_COLUMNS, got[key], want[key], strict=True):
                if a != b:
                    problems.append(
                        f"{what}: {name} stored {_show(a)} where the log has {_show(b)}"
                    )
        if problems and legacy and kind == "edit":
            unsessioned.add(offset)
        else:
            found += [Finding(letter_id, "postgres", p, False) for p in problems]
    if unsessioned:
        old_rows = _LEGACY.format(len(unsessioned), letter_id)
        found.append(Finding(letter_id, "postgres", old_rows, False))
    return found or [
        Finding(letter_id, "postgres", f"{len(want)} audit row(s) equal the log's"
                f" (up to position {stored.committed})", True)
    ]  # fmt: skip


_AUDIT_COLUMNS = ("id", "user_id", "change_data", "timestamp")
_LEGACY = (
    "audit edit rows at {} position(s) differ from the log's: stored before edit rows named"
    " their session (no conn_id; a burst was per user, not per session); rebuild the letter's"
    " audit trail with `steno-collab backfill snapshotter --letters {}` (every letter's:"
    " `--from-beginning --reset`)"
)


def _legacy_edits(got: dict[Any, tuple[Any, ...]], want: dict[Any, tuple[Any, ...]]) -> bool:
    """Edit rows written the old way (before 2026-12-06): a stored edit row without `conn_id`
    where the log's fold has one with it, at the same position. Then the letter's differing
    edit rows are that (bursts were cut per user, so their positions differ too), not each a
    mismatch of its own; edits outside a session carry none in either and agree."""
    return any(
        key[1] == "edit"
        and key in want
        and "conn_id" not in _data(row)
        and "conn_id" in _data(want[key])
        for key, row in got.items()
    )


def _data(row: tuple[Any, ...]) -> Json:
    """An audit row's change_data (`_audit`'s third column), a dict when it is an object."""
    return row[2] if isinstance(row[2], dict) else {}


async def _comments(
    src: Sources, letter_id: str, stored: _InPostgres, folded: Folded
) -> list[Finding]:
    """The materialised threads and comments against the snapshotter's comment changes applied
    by its own SQL (`snapshotter.store`) to temporary tables, rolled back after. Thread and
    comment ids are unique across letters: another letter's row holding an id this letter's
    events use is copied in first, so that its insert is skipped as the snapshotter's was."""
    ids = {
        key: sorted({str(getattr(op.values[3], key, "")) for op in folded.comments})
        for key in ("thread_id", "comment_id")
    }
    async with src.pg.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            schema = _identifier(await conn.fetchval("SELECT current_schema()"))
            for table, key in (("comment_threads", "thread_id"), ("comments", "comment_id")):
                # Unqualified names resolve to the temporary tables first (pg_temp).
                await conn.execute(
                    f"CREATE TEMPORARY TABLE {table} (LIKE {schema}.{table} INCLUDING ALL)"
                    " ON COMMIT DROP"
                )
                await conn.execute(
                    f"INSERT INTO pg_temp.{table} SELECT * FROM {schema}.{table}"
                    f" WHERE letter_id <> $1 AND {key} = ANY($2::text[])",
                    letter_id,
                    ids[key],
                )
            for op in folded.comments:
                await write_comment(conn, op)
            threads = await conn.fetch(_THREADS.format(table="pg_temp.comment_threads"), letter_id)
            comments = await conn.fetch(_COMMENTS.format(table="pg_temp.comments"), letter_id)
        finally:
            await tx.rollback()
    found = []
    for name, key, got_rows, want_rows in (
        ("thread", "thread_id", stored.threads, threads),
        ("comment", "comment_id", stored.comments, comments),
    ):
        got = {r[key]: _row_values(r) for r in got_rows}
        want = {r[key]: _row_values(r) for r in want_rows}
        found += [Finding(letter_id, "postgres", p, False) for p in _differences(name, got, want)]
    return found or [
        Finding(letter_id, "postgres", f"{len(comments)} comment(s) in {len(threads)} thread(s)"
                " equal the log's", True)
    ]  # fmt: skip


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _row_values(row: Any) -> Json:
    return {k: json.loads(v) if k in ("anchor", "mentions") else v for k, v in dict(row).items()}


def _differences(name: str, got: dict[Any, Json], want: dict[Any, Json]) -> list[str]:
    problems = []
    for key in sorted(got.keys() | want.keys(), key=str):
        if key not in got:
            problems.append(f"{name} {key} missing")
        elif key not in want:
            problems.append(f"{name} {key} is not in the log")
        else:
            for column in sorted(got[key].keys() | want[key].keys()):
                a, b = got[key].get(column), want[key].get(column)
                if a != b:
                    problems.append(
                        f"{name} {key}: {column} stored {_show(a)} where the log has {_show(b)}"
                    )
    return problems


def _stored_json(value: Any) -> Any:
    """As the snapshotter stores it (jsonb, U+0000 as U+FFFD) and reads back."""
    return json.loads(json.dumps(pgtext.stored(value)))


def _iso(at: dt.datetime) -> str:
    """A stored time as the tools print them (ISO-8601 UTC, ms), compared at that precision."""
    return iso((at - EPOCH) // dt.timedelta(milliseconds=1))


def _show(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:79] + "…"


class _Replayed:
    """The log's document at a position, as `_compare` reads it."""

    def __init__(self, state: bytes, field_name: str) -> None:
        self.state, self.field_name = state, field_name
        self.snapshot = LetterDocument(field_name, state).snapshot()


def _compare(
    field: str, state: bytes, version: read.Version | None, replayed: "_Replayed"
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


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


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
