"""A letter's timeline: who did what when (sessions, edit bursts, comments, locks, versions).

The rows are the snapshotter's `collaboration` audit trail, plus those of the letter's records
past the snapshotter's position on its partition, folded on the spot from its saved state of the
letter as it will fold them (bursts open across the position included): the snapshotter behind or
stopped hides nothing, and the letter is folded only from where its state was saved, and only
when it has records past the position (other letters' records there cost their reading alone).
Those records and their fold are kept for the few letters read last (`_Tail`): a refresh or the
next page reads only the records appended since, and folds again from the saved state only
once the snapshotter's position moved.
Where that seam cannot be exact (no stored position, a reset meanwhile, a letter created past
the position, a record whose fold raises) the log alone is folded. Without PostgreSQL they are
produced on the spot by the snapshotter's own fold (`snapshotter.fold.Folder`) over the
letter's records, which yields the same rows (except bursts still open at the log's end). That
fold is kept for the few letters read last (per log), so a walk page by page folds the log
about once: each page folds only the records appended since the page before.

Entries are ordered by (time, log partition, log offset, type), a key unique per letter (the
table's own unique key, bar the topic, is its last three), so a page of them is cut after the key
of its last entry (`Cursor`): a walk page by page sees each entry once, and rows of records
appended meanwhile come in later pages. One exception: an edit burst is recorded when it closes,
under the time and offset where it started, so a burst still open while the walk passes its
start is not in the walk (it is in a later walk, or a page from an earlier cursor).

A window (`since <= time < until`) holds the entries in it and the edit bursts that overlap it
(from their first to their last update), each cut to the updates typed in it (`_cut`: what
they inserted, deleted and formatted, re-applied from the log), so a burst begun before `since`
is an entry under its first update in the window, and typing after `until` is not counted.

Newest first ("desc") the same key is walked backwards: a page holds the entries strictly before
its cursor, so a cursor means the same entry in both orders and stays valid in either. Rows of
records appended during such a walk are after its first page and so not in it; a burst closing
meanwhile is, if its start is still ahead of the walk.
"""

import asyncio
import contextlib
import datetime as dt
import json
import re
import weakref
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, TypeVar

from eventlog.records import Record
from gateway.live.loader import scan
from schemas import pages
from schemas.envelope import EventDecodeError, decode_record
from schemas.rebuilds import snapshotter_position
from schemas.wording import counted, numbered
from snapshotter.document import EditDelta, LetterDocument
from snapshotter.fold import Folder
from snapshotter.quarantine import PoisonRecord, Quarantine
from snapshotter.state import LetterState
from snapshotter.store import Store
from tools.replay import Cut, LetterNotFound, exists, replay
from tools.sources import Sources
from tools.terminal import visible
from tools.timefmt import EPOCH, FIRST_MS, LAST_MS, iso, to_datetime

Json = dict[str, Any]
_MS = dt.timedelta(milliseconds=1)
_CURSOR = re.compile(r"(-?\d{1,15}):(\d{1,10}):(\d{1,19}):([\x21-\x7e]{1,100})")
# Records past the snapshotter's position read per request at most; beyond, the log alone is
# folded (kept for the letters read last: each page then reads only what came since).
TAIL_MAX = 5_000
_OFFSETS = 2**63  # log offsets and partitions are PostgreSQL bigint / int
Order = Literal["asc", "desc"]


class Backwards(ValueError):
    """`until` before `since`: an empty window by mistake, refused as `diff` refuses to > from.
    `phrased` names them as the caller's parameters do (`--since`, or REST's `since`)."""

    def __init__(self, since_ms: int, until_ms: int) -> None:
        self.since_ms, self.until_ms = since_ms, until_ms
        super().__init__(self.phrased("--since", "--until"))

    def phrased(self, since_name: str, until_name: str) -> str:
        return f"{until_name} ({iso(self.until_ms)}) is before {since_name} ({iso(self.since_ms)})"


class BadCursor(ValueError):
    """Not a cursor's form (a well-formed one is taken as a position, whoever made it)."""


class Cursor(NamedTuple):
    """The sort key of an entry: a page goes on after it. Tuples compare as the SQL rows do."""

    at_ms: int
    partition: int
    offset: int
    kind: str

    def encode(self) -> str:
        """Opaque to clients (URL-safe): only its decoding is a contract."""
        return pages.encode(f"{self.at_ms}:{self.partition}:{self.offset}:{self.kind}")

    @classmethod
    def decode(cls, token: str) -> "Cursor":
        found = _CURSOR.fullmatch(pages.decode(token) or "")
        if found is None:
            raise BadCursor(f"{token[:40]!r} is not a cursor of this history")
        at_ms, partition, offset = (int(found.group(i)) for i in (1, 2, 3))
        if not FIRST_MS <= at_ms <= LAST_MS or partition >= 2**31 or offset >= _OFFSETS:
            raise BadCursor(f"{token[:40]!r} is not a cursor of this history")
        return cls(at_ms, partition, offset, found.group(4))


@dataclass(frozen=True, slots=True)
class Entry:
    at_ms: int
    user: str
    kind: str  # the audit change_type
    data: Json
    offset: int  # log offset of the record it came from
    partition: int = 0

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.at_ms, self.partition, self.offset, self.kind)

    def to_json(self) -> Json:
        return {"at": iso(self.at_ms), "user": self.user, "type": self.kind, "data": self.data,
                "offset": self.offset}  # fmt: skip


async def history(
    src: Sources, letter_id: str, since_ms: int | None = None, until_ms: int | None = None
) -> list[Entry]:
    """Entries with since <= time < until (edit bursts cut to it: `page`), in time order."""
    entries, _ = await page(src, letter_id, since_ms, until_ms)
    return entries


async def page(
    src: Sources,
    letter_id: str,
    since_ms: int | None = None,
    until_ms: int | None = None,
    after: Cursor | None = None,
    limit: int | None = None,
    order: Order = "asc",
) -> tuple[list[Entry], Cursor | None]:
    """Up to `limit` entries (None: all) in the window since <= time < until (an edit burst
    overlapping it cut to its updates inside it: `_cut`) and a key past `after` in `order`
    (desc: newest first, keys before `after`), and the cursor to go on from when more entries
    follow them now (else None)."""
    if since_ms is not None and until_ms is not None and until_ms < since_ms:
        raise Backwards(since_ms, until_ms)
    wanted = None if limit is None else limit + 1  # one more tells whether a next page exists
    desc = order == "desc"
    found = None
    if src.pg is not None:
        found = await _audit_and_tail(src, letter_id, since_ms, until_ms, after, wanted, desc)
    if found is None:  # no PostgreSQL, or no exact seam with its rows: the log alone
        found = _window(await _from_log(src, letter_id), since_ms, until_ms, after, wanted, desc)
    entries = await _in_window(src, letter_id, found, since_ms, until_ms, after, wanted, desc)
    if not entries and not await exists(src, letter_id):
        raise LetterNotFound(letter_id)
    if limit is not None and len(entries) > limit:
        return entries[:limit], entries[limit - 1].cursor
    return entries, None


async def _audit_and_tail(
    src: Sources,
    letter_id: str,
    since_ms: int | None,
    until_ms: int | None,
    after: Cursor | None,
    wanted: int | None,
    desc: bool,
) -> list[Entry] | None:
    """The audit trail's rows, and those of the letter's records past the snapshotter's position
    on its partition folded here as the snapshotter will fold them (from its saved state of the
    letter, so bursts open across the position close as they will there); None where that
    cannot be exact (no position, another log, a state the tail cannot start from)."""
    async with _reading(src, letter_id) as tail:  # one reader extends the letter's fold
        topic, partition = src.letters_topic, src.partition_of(letter_id)
        # Read before the transaction, not to hold a connection over the log: a few records while
        # the snapshotter keeps up (other letters' included), never the whole letter.
        seen = await tail.advance(src, letter_id)
        if seen is None:
            return None  # far behind (stopped): the log's fold, kept between pages, reads less
        state, skipped = None, frozenset[int]()
        async with src.pg.acquire() as conn, conn.transaction(isolation="repeatable_read"):
            # One snapshot: the position, the rows it covers and the state saved with them.
            committed = await snapshotter_position(conn, topic, partition)
            if committed is None or committed < seen:
                return None  # reset meanwhile (a rebuild): its rows are not the tail's seam
            rows = await _from_audit(conn, letter_id, since_ms, until_ms, after, wanted, desc)
            # The snapshotter may commit past what was read meanwhile: its rows cover that much.
            tail.moved(committed)
            if tail.records and tail.folder is None:
                store = Store(conn)
                states = await store.load_states(
                    [letter_id], field_name=src.settings.doc_field,
                    window_ms=int(src.settings.audit_edit_window_s * 1000), committed=committed,
                )  # fmt: skip
                if not states:
                    return None  # created past the position: PostgreSQL holds none of it
                state = states[0]
                if state.unsaved_from is not None and state.unsaved_from < committed:
                    skipped = frozenset(
                        await store.quarantined(topic, partition, state.unsaved_from, committed)
                    )
        if not tail.records:
            return rows
        try:
            if state is not None:
                await tail.start(src, state, skipped)
            folded = tail.entries()
        except PoisonRecord:
            return None
        return rows + _window(folded, since_ms, until_ms, after, wanted, desc)


async def unfolded(src: Sources, letter_id: str) -> int:
    """How many records of the letter the log holds that the snapshotter has not folded yet
    (each may cut at most one version: a version PostgreSQL lacks may be among them, one that
    history names already); TAIL_MAX past it when the snapshotter is further behind on the
    partition or has no position there (not counted)."""
    async with _reading(src, letter_id) as tail:
        seen = await tail.advance(src, letter_id)
        return TAIL_MAX + 1 if seen is None else len(tail.records)


@contextlib.asynccontextmanager
async def _reading(src: Sources, letter_id: str) -> "AsyncIterator[_Tail]":
    """The letter's kept tail, for one reader at a time (it extends the fold); while another
    reads it, a tail of this request's own (uncached: what each request read before), so that
    requests do not queue behind one another's log reads (a stalled broker: seconds each)."""
    tail = _kept(_tails, src, letter_id, _Tail)
    if tail.lock.locked():
        yield _Tail(src)
        return
    async with tail.lock:
        yield tail


class _Tail:
    """The letter's records past the snapshotter's position `seen` on its partition, read up to
    `next`, and their rows folded from its state saved at `seen`: kept for the letters read
    last, so that a page, a refresh (or `unfolded`) reads only the records appended since and
    folds only those; refolded from the saved state when the position moves (the rows of the
    records it passed are PostgreSQL's then). At most TAIL_MAX records (else not kept)."""

    def __init__(self, src: Sources) -> None:
        self.log = weakref.ref(src.log)  # not kept alive; a new log at its address is not it
        self.settings = src.settings
        self.lock = asyncio.Lock()
        self.seen: int | None = None
        self.next = 0
        self.records: list[Record] = []  # the letter's in [seen, next)
        self.folder: Folder | None = None  # from the state at `seen`, `records[:folded]` in
        self.folded = 0
        self._rows: list[Entry] = []  # in fold order
        self._sorted: list[Entry] = []

    async def advance(self, src: Sources, letter_id: str) -> int | None:
        """The snapshotter's position now, with the letter's records read up to the partition's
        end; None (nothing kept) without a position, more than TAIL_MAX records behind it, or a
        position past the end (only in another log: one restored from a backup)."""
        topic, partition = src.letters_topic, src.partition_of(letter_id)
        seen = await snapshotter_position(src.pg, topic, partition)
        end = (await src.log.end_offsets(topic)).get(partition, 0)
        if seen is None or end - seen > TAIL_MAX or seen > end:
            self.restart(None)
            return None
        if seen != self.seen or self.next > end:
            self.restart(seen)
        if self.next < end:
            self.records += [r async for r in scan(src.log, topic, letter_id, self.next, end)]
            self.next = end
        return seen

    def moved(self, committed: int) -> None:
        """The position committed is `committed`, read in the rows' snapshot: past `seen`, the
        records before it are folded by the snapshotter (their rows are PostgreSQL's)."""
        if self.seen is not None and committed > self.seen:
            records, read_to = [r for r in self.records if r.offset >= committed], self.next
            self.restart(committed)
            self.records, self.next = records, max(read_to, committed)

    async def start(self, src: Sources, state: LetterState, skipped: frozenset[int]) -> None:
        """Fold from `state`, caught up first (as the snapshotter's `_catch_up`) when it lags
        records before `seen`, skipping those the snapshotter quarantined (`skipped`)."""
        assert self.seen is not None
        folder = Folder(src.settings)
        folder.quarantine = Quarantine(max_attempts=1)
        if state.unsaved_from is not None and state.unsaved_from < self.seen:
            topic = src.letters_topic
            behind = scan(src.log, topic, state.letter_id, state.unsaved_from, self.seen)
            folder.catch_up(
                [state], [r async for r in behind if r.offset not in skipped], carry=False
            )
        else:
            folder.adopt([state])
        self.folder, self.folded, self._rows, self._sorted = folder, 0, [], []

    def entries(self) -> list[Entry]:
        """The rows of `records` in key order, folding those not folded yet."""
        if self.folder is None:
            return []
        if self.folded < len(self.records):
            try:
                rows = _rows(self.folder, self.records[self.folded :])
            except BaseException:
                self.folder = None  # it may hold a half-folded record: start again next time
                raise
            self._rows += rows
            self.folded = len(self.records)
        if len(self._sorted) != len(self._rows):
            self._sorted = sorted(self._rows, key=_cursor)
        return self._sorted

    def restart(self, seen: int | None) -> None:
        self.seen, self.next, self.records = seen, seen or 0, []
        self.folder, self.folded, self._rows, self._sorted = None, 0, [], []


async def _from_audit(
    pg: Any,
    letter_id: str,
    since_ms: int | None,
    until_ms: int | None,
    after: Cursor | None,
    limit: int | None,
    desc: bool = False,
) -> list[Entry]:
    # The order of `snapshotter.read.audit_rows`, with the type in byte order (COLLATE "C") as
    # Python compares it, so both sources cut pages alike; the bare "timestamp" bound uses the
    # (letter_id, "timestamp") index (scanned backwards for desc).
    bound = None if after is None else to_datetime(after.at_ms)
    ahead, past, way = ("<=", "<", " DESC") if desc else (">=", ">", "")
    rows = await pg.fetch(
        'SELECT user_id, change_type, change_data::text AS data, "timestamp", log_partition,'
        " log_offset FROM collaboration"
        ' WHERE letter_id = $1 AND ($2::timestamptz IS NULL OR "timestamp" >= $2)'
        ' AND ($3::timestamptz IS NULL OR "timestamp" < $3)'
        f' AND ($4::timestamptz IS NULL OR "timestamp" {ahead} $4 AND ("timestamp", log_partition,'
        f' log_offset, change_type COLLATE "C") {past} ($4, $5::int, $6::bigint, $7::text))'
        f' ORDER BY "timestamp"{way}, log_partition{way}, log_offset{way},'
        f' change_type COLLATE "C"{way} LIMIT $8',
        letter_id,
        None if since_ms is None else to_datetime(since_ms),
        None if until_ms is None else to_datetime(until_ms),
        bound,
        None if after is None else after.partition,
        None if after is None else after.offset,
        None if after is None else after.kind,
        limit,
    )
    if since_ms is not None:
        # Bursts started before the window and still typing in it (`_cut` keeps their part in
        # it). None spans a version: those after the last version before `since` only.
        rows += await pg.fetch(
            'SELECT user_id, change_type, change_data::text AS data, "timestamp", log_partition,'
            " log_offset FROM collaboration"
            """ WHERE letter_id = $1 AND change_type = 'edit' AND "timestamp" < $2"""
            ' AND "timestamp" >= coalesce((SELECT max("timestamp") FROM collaboration'
            """ WHERE letter_id = $1 AND change_type = 'version' AND "timestamp" < $2),"""
            " '-infinity')"
            """ AND "timestamp" + (change_data->>'duration_ms')::bigint * interval '1 ms' >= $2""",
            letter_id,
            to_datetime(since_ms),
        )
    return [
        Entry(
            (row["timestamp"] - EPOCH) // _MS,  # exact: a float timestamp() can lose the ms
            row["user_id"],
            row["change_type"],
            json.loads(row["data"]),
            row["log_offset"],
            row["log_partition"],
        )
        for row in rows
    ]


async def _from_log(src: Sources, letter_id: str) -> list[Entry]:
    """The letter's entries in key order, its log folded up to the partition's end now."""
    folded = _cached(src, letter_id)
    async with folded.lock:  # one catch-up at a time; readers keep the list they were given
        partition = src.partition_of(letter_id)
        end = (await src.log.end_offsets(src.letters_topic)).get(partition, 0)
        if folded.next is not None and folded.next > end:
            folded.restart()  # a position in another log (one restored from a backup)
        while True:
            try:
                await _fold_to(src, letter_id, folded, end)
                return folded.entries
            except PoisonRecord:
                # A record whose fold raises (a pycrdt panic) is skipped, as the snapshotter
                # skips it: fold again from scratch (no half-folded state survives) with that
                # record quarantined.
                folded.restart()


async def _fold_to(src: Sources, letter_id: str, folded: "_Folded", end: int) -> None:
    batch = []
    async for record in scan(src.log, src.letters_topic, letter_id, folded.next, end):
        batch.append(record)
        if len(batch) >= 1000:
            folded.fold(batch)
            batch = []
    folded.fold(batch, end)


class _Folded:
    """A letter's log folded so far, kept between pages so that a walk folds it about once: the
    fold's state, the entries it yielded, and the partition's next offset to fold. Updated only
    between awaits, so a cancelled request leaves it consistent (at a batch's end)."""

    def __init__(self, src: Sources) -> None:
        self.log = weakref.ref(src.log)  # not kept alive; a new log at its address is not it
        self.settings = src.settings
        self.folder = Folder(src.settings)
        self.folder.quarantine = Quarantine(max_attempts=1)  # outlives `restart`
        self.lock = asyncio.Lock()
        self.next: int | None = None  # None: the partition's first stored offset
        self._rows: list[Entry] = []  # in fold order
        self._sorted: list[Entry] = []

    @property
    def entries(self) -> list[Entry]:
        """Sorted by key; a new list whenever rows were added (a returned one never changes)."""
        if len(self._sorted) != len(self._rows):
            # A burst is recorded when it closes, under its start: new rows can sort before
            # older ones. Timsort takes the mostly sorted list in about one pass.
            self._sorted = sorted(self._rows, key=lambda e: e.cursor)
        return self._sorted

    def fold(self, batch: list[Any], end: int | None = None) -> None:
        try:
            rows = _rows(self.folder, batch)
        except BaseException:
            self.restart()  # the folder may hold a half-folded record
            raise
        self._rows += rows
        if batch:
            self.next = batch[-1].offset + 1
        if end is not None:
            self.next = end

    def restart(self) -> None:
        self.folder.forget()
        self.next, self._rows, self._sorted = None, [], []


# The letters last read, per log: a REST walk's pages come one request each. Bounded: each
# holds a letter's folded state and entries (the log's, or those past the snapshotter).
_CACHED = 4
_folds: OrderedDict[tuple[int, str, str], _Folded] = OrderedDict()
_tails: OrderedDict[tuple[int, str, str], _Tail] = OrderedDict()


_Kept = TypeVar("_Kept", _Folded, _Tail)


def _cached(src: Sources, letter_id: str) -> _Folded:
    return _kept(_folds, src, letter_id, _Folded)


def _kept(
    cache: OrderedDict[tuple[int, str, str], _Kept],
    src: Sources,
    letter_id: str,
    make: Callable[[Sources], _Kept],
) -> _Kept:
    key = (id(src.log), src.letters_topic, letter_id)
    kept = cache.get(key)
    if kept is None or kept.log() is not src.log or kept.settings != src.settings:
        kept = cache[key] = make(src)
    cache.move_to_end(key)
    while len(cache) > _CACHED:
        cache.popitem(last=False)
    return kept


def _window(
    entries: list[Entry],
    since_ms: int | None,
    until_ms: int | None,
    after: Cursor | None,
    wanted: int | None,
    desc: bool,
) -> list[Entry]:
    """Of key-sorted `entries`, the first `wanted` in `since_ms <= time < until_ms` past `after`
    in the order asked for (bisected: a page costs its own length, not the letter's), and the
    edit bursts started before `since_ms` that run into the window (for `_cut`: their key there
    is another; they come after the others)."""
    lo = bisect_left(entries, since_ms or 0, key=_at)
    hi = len(entries) if until_ms is None else bisect_left(entries, until_ms, key=_at)
    begun = [] if since_ms is None else _running(entries, lo, since_ms)
    if desc:
        if after is not None:
            hi = min(hi, bisect_left(entries, after, key=_cursor))
        lo = lo if wanted is None else max(lo, hi - wanted)
        return entries[lo:hi][::-1] + begun
    if after is not None:
        lo = max(lo, bisect_right(entries, after, key=_cursor))
    hi = hi if wanted is None else min(hi, lo + wanted)
    return entries[lo:hi] + begun


def _running(entries: list[Entry], before: int, since_ms: int) -> list[Entry]:
    """The edit bursts of `entries[:before]` whose last update is at or after `since_ms`: back to
    the last version before it at most (a version closes every burst open)."""
    found = []
    for entry in reversed(entries[:before]):
        if entry.kind == "version":
            break
        if entry.kind == "edit" and _end(entry) >= since_ms:
            found.append(entry)
    return found


async def _in_window(
    src: Sources,
    letter_id: str,
    found: list[Entry],
    since_ms: int | None,
    until_ms: int | None,
    after: Cursor | None,
    wanted: int | None,
    desc: bool,
) -> list[Entry]:
    """`found` (the first `wanted` entries past `after` that start in the window, and bursts
    begun before it) with each burst cut to the window (`_cut`), in key order from `after` on,
    the first `wanted` of them. A burst cut by `since` starts at its first update in the window,
    a key in it, so pages and cursors run over the window's entries alone."""
    entries = []
    for entry in found:
        if entry.kind == "edit" and (
            (since_ms is not None and entry.at_ms < since_ms)
            or (until_ms is not None and _end(entry) >= until_ms)
        ):
            cut = await _cut(src, letter_id, entry, since_ms, until_ms)
            if cut is None:
                continue
            entry = cut
        if after is None or (entry.cursor < after if desc else entry.cursor > after):
            entries.append(entry)
    return sorted(entries, key=_cursor, reverse=desc)[:wanted]


def _inside(at_ms: int, since_ms: int | None, until_ms: int | None) -> bool:
    return (since_ms is None or at_ms >= since_ms) and (until_ms is None or at_ms < until_ms)


def _end(entry: Entry) -> int:
    """Time of a burst's last update (of any other entry, its time)."""
    duration = entry.data.get("duration_ms") if entry.kind == "edit" else 0
    return entry.at_ms + (duration if isinstance(duration, int) else 0)


class _Update(NamedTuple):
    offset: int
    at_ms: int
    delta: EditDelta


async def _cut(
    src: Sources, letter_id: str, burst: Entry, since_ms: int | None, until_ms: int | None
) -> Entry | None:
    """The part of an edit burst typed in `since_ms <= time < until_ms` as an edit row of its
    own (under its first update there; None: no update there). Its updates are the burst's
    user's (in its session) between its first and last offsets, applied from the letter as it
    was before the first (`replay`). Where they are not the row's updates (a row that names no
    session while the user also typed in one, one stored before rows named their session, an
    update the fold skipped): the whole row, as it overlaps the window."""
    key = (id(src.log), src.letters_topic, letter_id, burst.cursor, since_ms, until_ms)
    kept = _cuts.get(key)
    if kept is not None and kept[0]() is src.log:  # not a new log at a freed one's address
        _cuts.move_to_end(key)
        return kept[1]
    updates = await _updates(src, letter_id, burst)
    cut: Entry | None = burst
    if updates is not None and len(updates) == burst.data.get("updates"):
        inside = [u for u in updates if _inside(u.at_ms, since_ms, until_ms)]
        cut = _part(burst, inside) if inside else None
    _cuts[key] = (weakref.ref(src.log), cut)
    while len(_cuts) > _CUTS:
        _cuts.popitem(last=False)
    return cut


async def _updates(src: Sources, letter_id: str, burst: Entry) -> list[_Update] | None:
    """The burst's updates with what each changed (None: it cannot be told)."""
    first, last = burst.data.get("first_offset"), burst.data.get("last_offset")
    if not isinstance(first, int) or not isinstance(last, int) or last < first:
        return None
    conn = burst.data.get("conn_id")
    before = await replay(src, letter_id, Cut(offset=first))
    records = [r async for r in scan(src.log, src.letters_topic, letter_id, first, last + 1)]
    return await asyncio.to_thread(_applied, src.settings.doc_field, before.state, records,
                                   burst.user, conn)  # fmt: skip


def _applied(
    field: str, state: bytes, records: list[Record], user: str, conn: Any
) -> list[_Update] | None:
    """Apply `records`' updates to `state`: those of `user` (through `conn`, when a str) that
    changed something, with their deltas. None where one cannot be applied."""
    doc, found = LetterDocument(field, state), []
    for record in records:
        try:
            event = decode_record(record.key, record.value, record.headers)
        except EventDecodeError:
            continue  # skipped by every consumer
        if event.type != "doc.update" or not isinstance(event.payload, bytes):
            continue
        try:
            delta = doc.apply(event.payload)
        except BaseException:  # refused (or a pyo3 panic, in this thread): the whole row
            return None
        ours = event.envelope.user == user and (
            not isinstance(conn, str) or event.envelope.conn == conn
        )
        if ours and not delta.empty:
            found.append(_Update(record.offset, int(record.timestamp), delta))
    return found


def _part(burst: Entry, updates: list[_Update]) -> Entry:
    """An edit row of `burst`'s user and session holding `updates` alone (as `edit_row`)."""
    paragraphs: set[int] = set()
    for u in updates:
        paragraphs |= u.delta.paragraphs
    data = {k: v for k, v in burst.data.items() if k != "formatted"}
    data |= {
        "inserted": sum(u.delta.inserted for u in updates),
        "deleted": sum(u.delta.deleted for u in updates),
        "paragraphs": sorted(paragraphs),
        "updates": len(updates),
        "first_offset": updates[0].offset,
        "last_offset": updates[-1].offset,
        "duration_ms": max(u.at_ms for u in updates) - updates[0].at_ms,
    }
    formatted = sum(u.delta.formatted for u in updates)
    if formatted:
        data["formatted"] = formatted
    return Entry(updates[0].at_ms, burst.user, burst.kind, data, updates[0].offset, burst.partition)


# Bursts cut to a window lately (each costs a replay): a walk's pages cut the same ones.
_CUTS = 64
_cuts: OrderedDict[
    tuple[int, str, str, Cursor, int | None, int | None], tuple[weakref.ref[Any], Entry | None]
] = OrderedDict()


def _at(entry: Entry) -> int:
    return entry.at_ms


def _cursor(entry: Entry) -> Cursor:
    return entry.cursor


def _rows(folder: Folder, batch: list[Any]) -> list[Entry]:
    out = folder.fold(batch)
    return [
        Entry(
            a.timestamp_ms,
            a.user_id,
            a.change_type,
            a.change_data,
            a.position.offset,
            a.position.partition,
        )
        for a in out.audit
    ]


def format_text(entries: list[Entry], full: bool = False) -> str:
    """One line per entry; what users wrote (bodies, quotes, labels, names) escaped. Long texts
    are cut, saying so, unless `full`: then whole, and a multi-line one below its entry's line,
    each of its lines indented."""
    out = []
    for e in entries:
        below: list[tuple[str, str]] = []
        out.append(f"{iso(e.at_ms)}  {visible(e.user):<16} {visible(describe(e, full, below))}\n")
        for name, text in below:
            out.append(f"    {name}:\n")
            out.extend(f"      {visible(line)}\n" for line in text.split("\n"))
    return "".join(out)


def format_json(entries: list[Entry]) -> str:
    return json.dumps([e.to_json() for e in entries], indent=2, sort_keys=True) + "\n"


def describe(entry: Entry, full: bool = False, below: list[tuple[str, str]] | None = None) -> str:
    """The entry's line; `full`: texts whole, a multi-line one added to `below` (name, text)
    and named on the line instead (without `below`, kept on the line)."""
    d, kind = entry.data, entry.kind

    def quoted(name: str, text: str) -> str:
        return _quoted(name, text, full, below)

    if kind == "edit":
        where = numbered("paragraph", [str(p + 1) for p in d.get("paragraphs", [])] or ["?"])
        secs = d.get("duration_ms", 0) / 1000
        counts = f"+{d.get('inserted', 0)} -{d.get('deleted', 0)} characters"
        if d.get("formatted"):
            counts += f", formatted {d['formatted']}"
        # A REST writer's rows name them (they may have no `session-start` row to): "(name)".
        named = f" ({d['name']})" if isinstance(d.get("name"), str) and d["name"] else ""
        if d.get("initial"):  # the content the letter was created with
            return f"created the content{named}: {counts} in {where}"
        span = f"{counted(d.get('updates', 0), 'update')}, {secs:.1f} s"
        return f"edited{named}: {counts} in {where} ({span}){_session(d)}"
    if kind == "letter.created":
        return f"created the letter {quoted('title', d.get('title', ''))}"
    if kind == "session-start":
        return f"joined as {d.get('role', '?')} ({d.get('name', '')}){_session(d)}"
    if kind == "session-end":
        secs = (d.get("duration_ms") or 0) / 1000
        ended = d.get("ended_at_ms")  # a dead gateway's: logged later than it ended
        seen = f"; last seen {iso(ended)}" if isinstance(ended, int) else ""
        return f"left after {secs:.1f} s ({d.get('reason') or 'closed'}{seen}){_session(d)}"
    if kind == "version":
        label = f" {quoted('label', d['label'])}" if d.get("label") else ""
        # The entry's user made it happen (saved it, or their edit or leave cut it: an autosave
        # or session-end is not theirs to choose); these edited since the last.
        edits = ", ".join(d.get("contributors", []))
        since = f"edits by {edits}" if edits else "no edits since the last version"
        verb = "saved" if d.get("type") == "named" else "triggered"
        return f"{verb} version {d.get('version_number')} ({d.get('type')}{label}; {since})"
    if kind.startswith("comment."):
        quote = d.get("anchor", {}).get("quote", "")
        on = f" on {quoted('quote', quote)}" if quote else ""
        body = f": {quoted('body', d['body'])}" if d.get("body") else ""
        action = kind.removeprefix("comment.")
        if action in ("resolved", "reopened"):  # the thread's: their records name no comment
            return f"{action} thread {d.get('thread_id')}{on}{body}"
        # Which of the thread's comments each line is, so that a later edit or delete of it is
        # matched to it.
        return f"{action} comment {d['comment_id']} in thread {d.get('thread_id')}{on}{body}"
    if kind.startswith("lock."):
        return f"lock {kind.removeprefix('lock.')} on section {d.get('section')}"
    if kind == "notification.read":
        return _read(d.get("comment_ids"), full)
    return f"{kind} {json.dumps(d, sort_keys=True)}"


SHORT_IDS = 10  # comment ids of a `notification.read` shown without --full (it holds 500 at most)


def _read(ids: Any, full: bool) -> str:
    """A `notification.read` row: the user read their notifications of these comments."""
    if not isinstance(ids, list) or not ids:
        return "read their notifications of no comment"
    names = [str(i) for i in ids]
    shown = names if full or len(names) <= SHORT_IDS else names[:SHORT_IDS]
    what = "notification" if len(names) == 1 else "notifications"
    line = f"read their {what} of {numbered('comment', shown)}"
    if len(shown) < len(names):
        line += f" [cut: {len(names)} comments, --full shows all]"
    return line


def _session(data: Json) -> str:
    """Which session (connection) a row is of, so that two tabs or devices of one user are told
    apart: sessions' rows name theirs, and so do edit rows made in one (none for edits outside a
    session, nor rows stored before edit rows carried it: docs/contracts.md)."""
    conn = data.get("conn_id")
    return f" [session {conn}]" if isinstance(conn, str) and conn else ""


SHORT = 60  # characters of a title, label, quote or body shown without --full


def _quoted(name: str, text: str, full: bool, below: list[tuple[str, str]] | None) -> str:
    """`text` in quotes: cut to SHORT characters (its newlines as spaces), a cut one marked
    visibly as such; `full`: whole, or, when it has lines and `below` collects them, "(name
    below)" with the text added to `below`."""
    if full:
        if "\n" in text and below is not None:
            below.append((name, text))
            return f"({name} below)"
        return f'"{text}"'
    flat = text.replace("\n", " ")
    if len(flat) <= SHORT:
        return f'"{flat}"'
    return f'"{flat[: SHORT - 1]}…" [cut: {len(flat)} characters, --full shows all]'
