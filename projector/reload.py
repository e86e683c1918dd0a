"""Reloading letters whose Redis keys expired, before new events are folded into them.

A letter absent from Redis that already has history is rebuilt from its latest `letter_version`
(the snapshotter's PostgreSQL save point: Yjs state + the log offset folded into it) plus its
records in the log, or from the log alone when there is no version (or no table yet). Only the
document can start from the version: comments, meta and the rest are folded from the letter's
records, so the partition is read from its start up to where the projector is. That costs a scan
of the partition, which is rare (a letter left untouched for a whole TTL) and shared by every
letter of the batch that needs it. The caller writes the result only together with the new
events: the partial state never reaches Redis.
"""

import asyncio
import logging
from collections.abc import Collection
from dataclasses import dataclass

import asyncpg

from eventlog import Log
from projector.fold import Item, fold_letter
from projector.state import EMPTY_DOC, LetterState
from schemas import EventDecodeError, Topic, decode_record
from schemas.bounded_pg import BoundedPool, bounded_pool
from schemas.ystate import undecodable

logger = logging.getLogger(__name__)

_LATEST = """
SELECT DISTINCT ON (letter_id) letter_id, ydoc_state, log_topic, log_partition, log_offset
FROM letter_version WHERE letter_id = ANY($1::text[])
ORDER BY letter_id, version_number DESC
"""


@dataclass(frozen=True, slots=True)
class Version:
    state: bytes
    topic: str
    partition: int
    offset: int  # next offset of that partition folded into `state`


class Versions:
    """Reads `letter_version` (written by the snapshotter); absent database/table: no versions.

    Each read is bounded by `timeout_s`: a reload runs under the projector's lock, so a
    database that hangs would stall every partition. A read that fails or times out counts as
    no version; the next reload asks again.
    """

    def __init__(self, dsn: str | None, timeout_s: float = 2.0) -> None:
        self._dsn = dsn
        self._timeout_s = timeout_s
        # Bounded reads, a frozen server's connections terminated (schemas/bounded_pg.py).
        self._pool: BoundedPool | None = None

    async def latest(self, letter_ids: Collection[str]) -> dict[str, Version]:
        if self._dsn is None or not letter_ids:
            return {}
        try:
            rows = await self._fetch(self._dsn, list(letter_ids))
        except asyncpg.UndefinedTableError:
            return {}
        # The log alone is enough, only slower. TimeoutError is an OSError; a bare
        # InterfaceError is a pooled connection that died.
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            logger.warning("letter_version unreadable, reloading from the log alone: %r", exc)
            return {}
        return {
            r["letter_id"]: Version(
                bytes(r["ydoc_state"]), r["log_topic"], r["log_partition"], r["log_offset"]
            )
            for r in rows
            if r["ydoc_state"] is not None
        }

    async def _fetch(self, dsn: str, letter_ids: list[str]) -> list[asyncpg.Record]:
        if self._pool is None:  # connected at the first read, within the timeout
            # No hold: a reload is rare, and the next one should find a server that is back.
            self._pool = await bounded_pool(
                dsn, self._timeout_s, max_size=2, min_size=0, timeout_s=self._timeout_s, hold_s=0
            )
        return await self._pool.fetch(_LATEST, letter_ids)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()


async def reload_letters(
    log: Log,
    versions: Versions,
    topic: str,
    partition: int,
    letter_ids: Collection[str],
    upto: int,
    doc_field: str,
) -> dict[str, LetterState]:
    """The states of `letter_ids` (all in `partition` of the letters `topic`) as of `upto`."""
    found = {
        lid: v
        for lid, v in (await versions.latest(letter_ids)).items()
        if (v.topic, v.partition) == (topic, partition)
    }
    for lid, v in list(found.items()):
        # A state that does not decode (a corrupt or tampered row) would crash the fold, and
        # the partition with it, at every restart: the log alone is the truth, only slower.
        if (problem := await asyncio.to_thread(undecodable, v.state)) is not None:
            logger.warning(
                "letter %s: latest version does not decode (%s); from the log", lid, problem
            )
            del found[lid]
    items = await _scan(log, topic, partition, set(letter_ids), upto)
    states = {}
    for lid in letter_ids:
        version = found.get(lid)
        state = LetterState(lid, doc=version.state if version else EMPTY_DOC)
        mine = items.get(lid, [])
        if version is not None:  # updates below the version's offset are in its state already
            mine = [i for i in mine if i.event.type != "doc.update" or i.offset >= version.offset]
        fold_letter(state, mine, doc_field)
        states[lid] = state
    return states


async def _scan(
    log: Log, topic: str, partition: int, wanted: set[str], upto: int
) -> dict[str, list[Item]]:
    items: dict[str, list[Item]] = {}
    offset = (await log.start_offsets(topic)).get(partition, 0)
    while offset < upto:
        records = await log.read(topic, partition, offset, min(1000, upto - offset))
        if not records:
            break
        for r in records:
            if r.offset >= upto or r.key.decode(errors="replace") not in wanted:
                continue
            try:
                event = decode_record(r.key, r.value, r.headers)
            except EventDecodeError:
                continue  # counted as poison when it was first folded
            items.setdefault(event.letter_id, []).append(Item(Topic.LETTERS, r.offset, event))
        offset = records[-1].offset + 1
    return items
