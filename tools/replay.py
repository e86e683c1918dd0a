"""Point-in-time replay: a letter exactly as its collaborators saw it at an instant or offset.

The document at a cut is the nearest `letter_version` at or before the cut (the snapshotter's
save point: Yjs state + the log position folded into it) plus the letter's `doc.update` records
after that position up to the cut, merged and applied once by the projector's own document fold
(`projector.document.fold_document`, which also drops the updates the projector refuses); or
the log alone when there is no version: from the letter's creation, whose offset the
snapshotter's `letters` row holds (`origin`), not from its partition's first record, which would
cost every other letter of the partition. Rendering is the snapshotter's (`LetterDocument`).

Cuts: `offset=N` folds the letter's records with offset < N (a position, Kafka convention);
`at_ms=T` folds the letter's records up to the first one stamped later than T (log record time),
i.e. the state after the last event at or before T.
"""

import asyncio
import logging
from dataclasses import dataclass

from gateway.live.loader import origin as loader_origin
from gateway.live.loader import scan
from projector.document import DocUpdate, fold_document
from projector.state import EMPTY_DOC
from schemas.envelope import EventDecodeError, decode_record
from schemas.ystate import undecodable
from snapshotter import read
from snapshotter.document import LetterDocument, Snapshot
from tools.sources import Sources
from tools.timefmt import iso, ms_of, to_datetime

log = logging.getLogger(__name__)
# Updates folded per call: pycrdt integrates one merged update of n keystrokes in O(n^2)
# (100,000: 9 s), while chunks of 500 take 0.3 s for all of them.
FOLD_CHUNK = 500


class LetterNotFound(LookupError):
    """No record of this letter in the log (and no row in PostgreSQL)."""


class NotYetCreated(LookupError):
    """A cut before the letter's first record: nothing to show, which is not an emptied letter.
    Raised for a letter that exists (the caller has checked access to it): no existence leak."""

    def __init__(self, letter_id: str, cut: "Cut", created_ms: int | None) -> None:
        created = "" if created_ms is None else f"; created at {iso(created_ms)}"
        if cut.offset is None and cut.at_ms is None:  # its records are not in this log
            super().__init__(f"letter {letter_id} has no records in the log{created}")
            return
        when = f"position {cut.offset}" if cut.at_ms is None else iso(cut.at_ms)
        super().__init__(f"letter {letter_id} did not exist at {when}{created}")


@dataclass(frozen=True, slots=True)
class Cut:
    offset: int | None = None  # a position: records below it
    at_ms: int | None = None  # an instant: records stamped at or before it
    # A version cut (with its offset): a later version saved at the same position is not it.
    version: int | None = None

    def __post_init__(self) -> None:
        if self.offset is not None and self.at_ms is not None:
            raise ValueError("give an instant or an offset, not both")
        if self.offset is not None and self.offset < 0:
            raise ValueError("an offset is >= 0")


@dataclass(frozen=True, slots=True)
class Replayed:
    letter_id: str
    partition: int
    state: bytes  # Yjs v1 state
    position: int  # next offset of the partition folded in
    last_ms: int | None  # record time of the last event of the letter folded (None: none)
    base_version: int | None  # the letter_version the replay started from
    updates: int  # doc.update records applied on top of it
    snapshot: Snapshot
    # The version it is exactly: `base_version` with nothing of the letter after it folded (a
    # diff's end names it; one past it is no version, though replayed from one).
    version: int | None = None
    # The partition's end when read (its next offset): an `offset` cut past it answered it.
    log_end: int | None = None


async def replay(src: Sources, letter_id: str, cut: Cut = Cut()) -> Replayed:
    """The letter at `cut` (default: now, i.e. the whole log)."""
    topic, partition = src.letters_topic, src.partition_of(letter_id)
    end = (await src.log.end_offsets(topic)).get(partition, 0)
    stop = end if cut.offset is None else min(cut.offset, end)
    base = await _base_version(src, letter_id, cut, stop)
    start = base.log_offset if base is not None else await origin(src, letter_id)
    if base is None and start is not None and stop < start <= end:
        start = stop  # a cut before the letter's creation: nothing of it to read
    state, updates, applied = base.ydoc_state if base else EMPTY_DOC, [], 0
    position = 0 if base is None else base.log_offset  # as before: the answer's, not the read's
    last_ms, seen = base_ms(base), base is not None
    async for record in scan(src.log, topic, letter_id, start, stop):
        if cut.at_ms is not None and record.timestamp > cut.at_ms:
            break
        seen, position, last_ms = True, record.offset + 1, record.timestamp
        try:
            event = decode_record(record.key, record.value, record.headers)
        except EventDecodeError:
            continue  # poison: every consumer skips it too
        if event.type == "doc.update" and isinstance(event.payload, bytes):
            # No user: a replay wants the state only (its fold skips the attribution).
            updates.append(DocUpdate(record.offset, "", record.timestamp, event.payload))
            if len(updates) == FOLD_CHUNK:
                state, applied = await _fold(state, updates, src), applied + len(updates)
                updates = []
    if not seen and not await exists(src, letter_id):
        raise LetterNotFound(letter_id)
    state, applied = await _fold(state, updates, src), applied + len(updates)
    snapshot = await asyncio.to_thread(_snapshot, src.settings.doc_field, state)
    number = None if base is None else base.version_number
    exact = number if base is not None and position == base.log_offset else None
    return Replayed(
        letter_id, partition, state, position, last_ms, number, applied, snapshot, exact, end
    )


async def replay_existing(src: Sources, letter_id: str, cut: Cut = Cut()) -> Replayed:
    """`replay`, refusing (NotYetCreated) a cut that folds nothing of the letter: before its
    first record. (`diff` refuses such a start alike, after its own check of the order.)"""
    replayed = await replay(src, letter_id, cut)
    if replayed.last_ms is None:
        raise NotYetCreated(letter_id, cut, await first_ms(src, letter_id))
    return replayed


async def first_ms(src: Sources, letter_id: str) -> int | None:
    """Record time of the letter's first record (its `letter.created`), None if the log has none."""
    async for record in scan(src.log, src.letters_topic, letter_id, await origin(src, letter_id)):
        return int(record.timestamp)
    return None


async def origin(src: Sources, letter_id: str) -> int | None:
    """Where the letter's records begin in its partition (gateway/live/loader.py `origin`);
    None, the partition's first record, without PostgreSQL."""
    if src.pg is None:
        return None
    return await loader_origin(src.pg, letter_id, src.letters_topic, src.partition_of(letter_id))


async def _fold(state: bytes, updates: list[DocUpdate], src: Sources) -> bytes:
    """Off the event loop: over REST a replay shares the gateway's loop with every socket."""
    if not updates:
        return state
    folded = await asyncio.to_thread(
        fold_document, state, updates, src.settings.doc_field, attribute=False
    )
    return folded.state


def _snapshot(doc_field: str, state: bytes) -> Snapshot:
    return LetterDocument(doc_field, state).snapshot()


def base_ms(version: read.Version | None) -> int | None:
    return None if version is None else ms_of(version.created_at)


async def _base_version(src: Sources, letter_id: str, cut: Cut, stop: int) -> read.Version | None:
    """The latest version before the cut whose state decodes: a version whose state does not is
    a projection gone wrong, skipped (a warning) for the one before it, else the log alone."""
    below = read.MAX_VERSION + 1 if cut.version is None else cut.version + 1
    while (found := await _version_before(src, letter_id, cut, stop, below)) is not None:
        if (found.log_topic, found.log_partition) != (
            src.letters_topic,
            src.partition_of(letter_id),
        ):
            return None  # a version of another log layout: the log alone is the truth
        problem = await asyncio.to_thread(undecodable, found.ydoc_state)
        if problem is None:
            return found
        number = found.version_number
        log.warning(
            "letter %s: version %d's saved state does not decode (%s); replaying without it",
            letter_id,
            number,
            problem,
        )
        below = number
    return None


async def _version_before(
    src: Sources, letter_id: str, cut: Cut, stop: int, below: int
) -> read.Version | None:
    """The latest version numbered below `below` at or before the cut."""
    if src.pg is None:
        return None
    if cut.at_ms is not None:
        number = await src.pg.fetchval(
            "SELECT max(version_number) FROM letter_version WHERE letter_id = $1"
            " AND created_at <= $2 AND version_number < $3::bigint",
            letter_id,
            to_datetime(cut.at_ms),
            below,
        )
    else:
        number = await src.pg.fetchval(
            "SELECT max(version_number) FROM letter_version WHERE letter_id = $1"
            " AND log_topic = $2 AND log_partition = $3 AND log_offset <= $4"
            " AND version_number < $5::bigint",
            letter_id,
            src.letters_topic,
            src.partition_of(letter_id),
            stop,
            below,
        )
    return None if number is None else await read.version(src.pg, letter_id, number)


async def exists(src: Sources, letter_id: str) -> bool:
    if src.pg is not None:
        row = await src.pg.fetchval("SELECT 1 FROM letters WHERE letter_id = $1", letter_id)
        if row is not None:
            return True
    return await first_ms(src, letter_id) is not None
