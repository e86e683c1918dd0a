"""Which firm a letter belongs to: memory, then Redis, then PostgreSQL, then the log itself.

The fast paths are projections that may lag; the log's `letter.created` is always there once a
create returned, so a letter is reachable on every instance as soon as it exists
(read-your-writes). Unknown letters and letters of other firms look the same to callers.

The log scan is the step that can cost: the letters topic is kept forever, so a partition holds
the product's whole history, and scanning one takes ~3 ms of the event loop per 1,000 records
(82 ms at 25,000). Any authenticated user can ask for ids that do not exist, so the scan starts
where the snapshotter's `letters` table stops covering the partition: its position in
`consumer_positions` (or a `backfill snapshotter --letters` job's, lower while it refolds the
letters whose rows it deleted), read in the same statement as the letter's row, so a letter
missing from the table was created at or after it. Without PostgreSQL (down, or not answering
within the gateway pool's bound: schemas/bounded_pg.py; or before the
snapshotter's first commit, or after a reset rebuild emptied it) the whole partition is scanned,
at most `SCANS` at a time. Both caches are bounded; a miss is remembered `NEGATIVE_TTL_S` only.
"""

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache, TTLCache
from pydantic import ValidationError

from eventlog.records import Log
from gateway import listing
from gateway.live.loader import COVERAGE, coverage_args, header, scan
from schemas.events import LetterCreated, Topic
from schemas.keys import meta_key
from schemas.settings import Settings

log = logging.getLogger(__name__)
LETTER_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
NEGATIVE_TTL_S = 5.0  # bounds how often a probe for an unknown id costs a partition scan
KNOWN_MAX = 100_000  # letters remembered (a LetterMeta is ~250 bytes)
UNKNOWN_MAX = 10_000  # recent misses remembered
SCANS = 2  # log scans at once; more lookups wait for one to finish


@dataclass(frozen=True, slots=True)
class LetterMeta:
    letter_id: str
    firm_id: str
    title: str


class _Known(LRUCache[str, LetterMeta]):
    """Remembered letters, also by firm in list order (gateway/listing.py); an evicted letter
    leaves both."""

    def __init__(self, maxsize: int) -> None:
        super().__init__(maxsize)
        self.firms: dict[str, listing.Remembered] = {}

    def add(self, meta: LetterMeta) -> None:
        self[meta.letter_id] = meta
        self.firms.setdefault(meta.firm_id, listing.Remembered()).add(meta.letter_id, meta.title)

    def popitem(self) -> tuple[str, LetterMeta]:
        letter_id, meta = super().popitem()
        if (firm := self.firms.get(meta.firm_id)) is not None:
            firm.discard(letter_id)
            if not firm:
                self.firms.pop(meta.firm_id, None)
        return letter_id, meta


class Access:
    def __init__(self, settings: Settings, log_: Log, redis: Any = None, pg: Any = None) -> None:
        self._settings, self._log, self._redis, self._pg = settings, log_, redis, pg
        self._known = _Known(KNOWN_MAX)
        self._unknown: TTLCache[str, bool] = TTLCache(UNKNOWN_MAX, NEGATIVE_TTL_S)
        self._scans = asyncio.Semaphore(SCANS)

    def remember(self, meta: LetterMeta) -> None:
        self._known.add(meta)
        self._unknown.pop(meta.letter_id, None)

    async def lookup(self, letter_id: str) -> LetterMeta | None:
        if not LETTER_ID.match(letter_id):
            return None
        if (meta := self._known.get(letter_id)) is not None:
            return meta
        if letter_id in self._unknown:
            return None
        meta = await self._find(letter_id)
        if meta is None:
            self._unknown[letter_id] = True
            return None
        self.remember(meta)
        return meta

    async def _find(self, letter_id: str) -> LetterMeta | None:
        if (meta := await self._redis_meta(letter_id)) is not None:
            return meta
        meta, covered = await self._pg_meta(letter_id)
        if meta is not None:
            return meta
        async with self._scans:
            return await self._log_meta(letter_id, covered)

    async def list_firm(
        self, firm_id: str, limit: int, after: listing.Cursor | None = None
    ) -> tuple[list[LetterMeta], listing.Cursor | None]:
        """A page of the firm's letters, newest first (gateway/listing.py), and the cursor of
        the next: the snapshotter's `letters` table plus the letters this instance knows that
        it lacks yet (read-your-writes). Without PostgreSQL: only the letters this instance
        created, looked up or tailed since it started."""
        known = self._known.firms.get(firm_id) or listing.Remembered()
        found, more = await listing.page(self._pg, firm_id, known, limit, after)
        return [LetterMeta(letter_id, firm_id, title) for _, letter_id, title in found], more

    async def _redis_meta(self, letter_id: str) -> LetterMeta | None:
        if self._redis is None:
            return None
        try:
            found = await self._redis.hgetall(meta_key(letter_id))
        except Exception as exc:  # a projection: fall through to the next source
            log.warning("redis unavailable for access lookup: %s", exc)
            return None
        firm = found.get(b"firm_id")
        if not firm:
            return None
        return LetterMeta(letter_id, firm.decode(), found.get(b"title", b"").decode())

    async def _pg_meta(self, letter_id: str) -> tuple[LetterMeta | None, int | None]:
        """The letter's row, and the offset of its partition up to which the table holds every
        letter (None: not known)."""
        if self._pg is None:
            return None, None
        topic = self._settings.topic(Topic.LETTERS)
        partition = self._log.partition_for(topic, letter_id.encode())
        try:
            row = await self._pg.fetchrow(
                "SELECT l.firm_id, l.title," + COVERAGE, *coverage_args(letter_id, topic, partition)
            )
        except Exception as exc:  # a missing table or an outage: the log still knows
            log.warning("postgres unavailable for access lookup: %s", exc)
            return None, None
        if row["firm_id"] is not None:
            return LetterMeta(letter_id, row["firm_id"], row["title"] or ""), None
        return None, row["covered"]

    async def _log_meta(self, letter_id: str, start: int | None) -> LetterMeta | None:
        topic = self._settings.topic(Topic.LETTERS)
        async for record in scan(self._log, topic, letter_id, start):
            if header(record, "type") == b"letter.created":
                try:
                    created = LetterCreated.model_validate_json(record.value)
                except ValidationError:
                    continue
                return LetterMeta(letter_id, created.firm_id, created.title)
        return None
