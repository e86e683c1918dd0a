"""Loading a letter's durable state: a projection's snapshot, then the log after its position.

Redis `ydoc:<id>` + `ydoc:<id>:offset` (the projector's), else the latest `letter_version`
(the snapshotter's), else nothing; then every `doc.update` of the letter after that position
up to the partition's end. The log is the truth: a projection that is missing or unreachable
(or hangs: the gateway's pool gives up on it within a few seconds, schemas/bounded_pg.py)
only makes the load slower, and so does one that is wrong: a state that does not decode is
skipped (a warning), the load starting from the version before it, else from the letter's
first record. With nothing to start from, the scan still need not start at the
partition's beginning (the topic is kept forever, so that is the product's whole history): a
letter's records begin at its `letter.created`, whose offset the `letters` table holds, and a
letter not in that table yet was created past the snapshotter's position in the partition (or
past a rebuild's of chosen letters, which deletes their rows and refolds them from the start).
The room may read who wrote what (`writes`) from there too, for the owners of its client ids
(gateway/live/ownership.py): at once, beside the first sync, without Redis; with it, only once
Redis is found to have lost some.

Updates are merged in log-order chunks and each chunk applied once: one merge of thousands of
updates is slow to build and to apply (10,000 edits: ~1 s merged at once, ~30 ms in chunks of
100; docs/performance.md). What the document still holds pending at the end (an update logged
before one it builds on, or pending parts the saved state carried) is carried by the loaded
state (schemas/ystate.py): the room holds it pending too, and integrates it once the missing
update arrives, as the clients that had it do.

The room seeds the pre-parser's shape of the letter from the loaded state (`shape`): pure
Python, about 0.1 ms per 100 bytes of state (10,000 paragraphs: 0.5 s to 2 s), so a large one
is built in a thread while the loop serves the instance's other letters.
"""

import asyncio
import functools
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pycrdt import Doc, merge_updates

from eventlog.records import Log, Record
from gateway.preparse import DocShape
from schemas.events import SNAPSHOTTER_GROUP, Topic
from schemas.keys import ydoc_key, ydoc_offset_key
from schemas.quarantine import PASSTHROUGH
from schemas.rebuilds import LETTERS_JOBS
from schemas.settings import Settings
from schemas.ystate import pending_parts, with_pending

log = logging.getLogger(__name__)
PAGE = 1000
# Selects, after the caller's columns, the letter's `letters` row (alias `l`; all NULL when it
# has none) and `covered`: how far into its partition the snapshotter's tables are complete, so
# that a letter missing from them was created at or after it. That is the snapshotter's position,
# or a rebuild of chosen letters' if lower: it deleted their rows and refolds them from there
# (schemas/rebuilds.py). NULL without a snapshotter position (a reset rebuild emptied the
# tables): the whole partition. Parameters: `coverage_args`.
COVERAGE = (
    " (SELECT CASE WHEN bool_or(consumer_group = $2) THEN min(next_offset) END"
    "  FROM consumer_positions WHERE topic = $3 AND partition = $4"
    "  AND (consumer_group = $2 OR starts_with(consumer_group, $5))) AS covered"
    " FROM (SELECT 1) AS one LEFT JOIN letters AS l ON l.letter_id = $1"
)


def coverage_args(letter_id: str, topic: str, partition: int) -> tuple[str, str, str, int, str]:
    return letter_id, SNAPSHOTTER_GROUP, topic, partition, LETTERS_JOBS


CHUNK = 100
NO_VERSION = 2**31  # above every letter_version number (an int)
# A state of more than this has its shape built in a thread (`shape`), ~8 ms and more inline.
SHAPE_INLINE_BYTES = 8 << 10
# Few threads, a queue of their own: the build holds the GIL, which switches every few ms, so
# the loop keeps its turn; the loop's default executor stays free for others' work.
_SHAPES = ThreadPoolExecutor(max_workers=2, thread_name_prefix="steno-shapes")


@dataclass(frozen=True, slots=True)
class Loaded:
    # The document's compact state with its pending parts (b"" when the letter has no content
    # yet): schemas/ystate.py.
    state: bytes
    end: int  # next offset of the letter's partition folded in
    pending: tuple[bytes, ...] = ()  # the pending parts `state` carries
    # Where the letter's records begin in its partition, before any snapshot position (None: at
    # its first stored record, as far as the loader knows): where `writes` starts.
    origin: int | None = None


def header(record: Record, name: str) -> bytes | None:
    for key, value in record.headers:
        if key == name:
            return value
    return None


async def scan(
    log_: Log, topic: str, letter_id: str, start: int | None, end: int | None = None
) -> AsyncIterator[Record]:
    """The letter's records in its partition from `start` (None: the first stored) to `end`.
    A `start` past the partition's end is a position in another log (a projection of a log
    since restored from a backup): the whole partition is read instead."""
    key = letter_id.encode()
    partition = log_.partition_for(topic, key)
    if end is None:
        end = (await log_.end_offsets(topic)).get(partition, 0)
    if start is None or start > end:
        start = (await log_.start_offsets(topic)).get(partition, 0)
    offset = start
    while offset < end:
        batch = await log_.read(topic, partition, offset, min(PAGE, end - offset))
        if not batch:
            return
        for record in batch:
            if record.offset >= end:
                return
            if record.key == key:
                yield record
        offset = batch[-1].offset + 1


async def load(settings: Settings, log_: Log, letter_id: str, redis: Any, pg: Any) -> Loaded:
    topic = settings.topic(Topic.LETTERS)
    partition = log_.partition_for(topic, letter_id.encode())
    end = (await log_.end_offsets(topic)).get(partition, 0)
    start = await _snapshot(letter_id, topic, partition, redis, pg)
    while True:
        if start.position is not None and start.position > end:
            # A projection of another log: do not trust it.
            start = _Start(None, None, start.origin)
        try:
            doc, pending = _opened(start.state)
            break
        except PASSTHROUGH:
            raise
        except BaseException as exc:  # pycrdt's ValueError, or a pyo3 panic on stranger bytes
            # A projection that is wrong is one that is missing: start from an earlier one.
            log.warning(
                "letter %s: %s does not decode (%s); loading without it", letter_id, start.name, exc
            )
            start = await _version(letter_id, topic, partition, pg, start.number)
    position, origin = start.position, start.origin
    chunk: list[bytes] = []
    async for record in scan(log_, topic, letter_id, position, end):
        if header(record, "type") == b"doc.update" and record.value:
            chunk.append(record.value)
            if len(chunk) == CHUNK:
                pending = _apply(doc, chunk, pending, letter_id)
                chunk = []
    pending = _apply(doc, chunk, pending, letter_id)
    if doc.get_state() == b"\x00" and not pending:
        return Loaded(b"", end, origin=origin)
    return Loaded(with_pending(doc.get_update(), pending), end, tuple(pending), origin)


async def shape(state: bytes, doc_field: str) -> DocShape:
    """The shape of a loaded state (trusted), built off the loop when large. The caller's
    document must not change meanwhile (the room's does not: remote events wait in its
    `_pending`, and nothing is answered before its load is done)."""
    build = functools.partial(DocShape.from_update, state, doc_field=doc_field)
    if len(state) <= SHAPE_INLINE_BYTES:
        return build()
    return await asyncio.get_running_loop().run_in_executor(_SHAPES, build)


def _opened(base: bytes | None) -> tuple[Doc[Any], list[bytes]]:
    """A document holding `base`, and what of it is pending; raises if `base` does not decode."""
    doc: Doc[Any] = Doc()
    if not base:
        return doc, []
    doc.apply_update(base)
    # A state that re-encodes to the same bytes has nothing pending (a clean one does): the
    # common case, a quarter of the cost of looking through it (500 KB: ~1 ms against ~5 ms).
    if doc.get_update() == base:
        return doc, []
    return doc, pending_parts(doc, [base])


async def writes(
    settings: Settings, log_: Log, letter_id: str, loaded: Loaded, pg: Any = None
) -> AsyncIterator[tuple[str, bytes]]:
    """(user, update) of every `doc.update` of the letter, in log order, from its first record
    to the load's end (not from its snapshot): who wrote what (gateway/live/ownership.py).
    Where its records begin is asked of `pg` if the load did not learn it (a Redis snapshot)."""
    topic = settings.topic(Topic.LETTERS)
    origin = loaded.origin
    if origin is None and pg is not None:
        origin = await _origin(letter_id, topic, log_.partition_for(topic, letter_id.encode()), pg)
    async for record in scan(log_, topic, letter_id, origin, loaded.end):
        user = header(record, "user")
        if header(record, "type") == b"doc.update" and record.value and user is not None:
            yield user.decode(), record.value


async def _origin(letter_id: str, topic: str, partition: int, pg: Any) -> int | None:
    try:
        return await origin(pg, letter_id, topic, partition)
    except Exception as exc:  # a missing table (fresh database) or an outage: read it all
        log.warning("postgres unavailable while reading %s's writers: %s", letter_id, exc)
        return None


async def origin(pg: Any, letter_id: str, topic: str, partition: int) -> int | None:
    """Where the letter's records begin in its partition, as far as PostgreSQL knows: its
    `letters` row's offset (its `letter.created`), else how far the snapshotter's tables are
    complete (a letter missing from them was created past it: `COVERAGE`). None, the
    partition's first record, for a row of another log layout or without a snapshotter
    position. PostgreSQL's errors are the caller's."""
    row = await pg.fetchrow(
        "SELECT l.log_offset AS created, l.log_topic, l.log_partition," + COVERAGE,
        *coverage_args(letter_id, topic, partition),
    )
    if row["created"] is not None:
        same = (row["log_topic"], row["log_partition"]) == (topic, partition)
        return int(row["created"]) if same else None
    return None if row["covered"] is None else int(row["covered"])


def _apply(
    doc: Doc[Any], updates: list[bytes], pending: list[bytes], letter_id: str = ""
) -> list[bytes]:
    """Apply `updates` merged; what `doc` holds pending of them and of `pending` since. An
    update pycrdt refuses (written past the gateway's checks) is skipped with a warning, as the
    projector and the snapshotter skip it (projector/document.py `_merged`): one poison record
    must not keep a letter from opening, and every reader of the log folds the same document."""
    if not updates:
        return pending
    try:
        update = merge_updates(*updates)  # checks each of them, even a single one
    except ValueError:
        good = [u for u in updates if _decodes(u)]
        log.warning(
            "letter %s: %d update(s) in the log do not decode; loading without them",
            letter_id,
            len(updates) - len(good),
        )
        if not good:
            return pending
        update = merge_updates(*good)
    doc.apply_update(update)
    return pending_parts(doc, [*pending, update])


def _decodes(update: bytes) -> bool:
    try:
        merge_updates(update)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class _Start:
    """Where a load starts: a projection's state and the position it covers, or no state and
    where the letter's records start; (None, None): read the whole partition."""

    state: bytes | None
    position: int | None
    origin: int | None  # where the letter's records start, if known
    name: str = ""  # what `state` is, for the log
    number: int | None = None  # its letter_version number; None: not a version


async def _snapshot(letter_id: str, topic: str, partition: int, redis: Any, pg: Any) -> _Start:
    if redis is not None:
        try:
            state, offset = await redis.mget(ydoc_key(letter_id), ydoc_offset_key(letter_id))
            if state is not None and offset is not None:
                return _Start(bytes(state), int(offset), None, "its Redis snapshot")
        except Exception as exc:  # Redis is a cache here; the log still has everything
            log.warning("redis unavailable while loading %s: %s", letter_id, exc)
    return await _version(letter_id, topic, partition, pg)


async def _version(
    letter_id: str, topic: str, partition: int, pg: Any, below: int | None = None
) -> _Start:
    """The latest letter_version (numbered below `below`), else where the letter's records start."""
    if pg is None:
        return _Start(None, None, None)
    try:
        row = await pg.fetchrow(
            "SELECT v.version_number, v.ydoc_state, v.log_offset, l.log_offset AS created,"
            + COVERAGE
            + " LEFT JOIN LATERAL (SELECT version_number, ydoc_state, log_offset"
            "  FROM letter_version WHERE letter_id = $1 AND version_number < $6::bigint"
            "  ORDER BY version_number DESC LIMIT 1) AS v ON true",
            *coverage_args(letter_id, topic, partition),
            NO_VERSION if below is None else below,
        )
    except Exception as exc:  # a missing table (fresh database) or an outage: use the log
        log.warning("postgres unavailable while loading %s: %s", letter_id, exc)
        return _Start(None, None, None)
    if row["ydoc_state"] is not None:
        number = int(row["version_number"])
        state, offset = bytes(row["ydoc_state"]), int(row["log_offset"])
        return _Start(state, offset, row["created"], f"version {number}'s saved state", number)
    start = row["created"] if row["created"] is not None else row["covered"]
    return _Start(None, start, start)
