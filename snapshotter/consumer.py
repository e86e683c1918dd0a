"""The snapshotter's loop: follow the letters topic from the positions stored in PostgreSQL,
fold each batch, and commit its rows with the new position in one transaction.

Letters' working states are saved only now and then (`fold.SavePolicy`, `Folder.stale`,
eviction, `checkpoint` on an orderly stop): a letter whose state row lags committed records
folds them again, without writing their rows (`_catch_up`), and is saved as caught up. `resume`
does so for every letter a crash left lagging in the partitions it takes
(`_catch_up_listed`); one loaded later still lagging is saved with the batch's commit.
Letters stay cached up to `Folder.max_cached` after each commit: those of other partitions
evicted unsaved are saved right after it, each partition's with its position left as it is.

`run` consumes the partitions the group membership (eventlog.group, driven by `service`)
assigned to this instance. Even if two instances briefly believed they owned one partition,
nothing would be written twice: the position compare-and-set in `store` rejects the slower one.
"""

import asyncio
import logging
import time
from asyncio import FIRST_COMPLETED
from collections.abc import AsyncIterator, Collection, Iterable, Sequence

import asyncpg

from eventlog.errors import PositionPastEndError
from eventlog.records import Log, Record
from schemas.events import SNAPSHOTTER_GROUP, Topic
from schemas.settings import Settings
from snapshotter import quarantine
from snapshotter.fold import BatchOutput, Folder, SavePolicy, StateRow
from snapshotter.metrics import Metrics
from snapshotter.quarantine import PoisonRecord
from snapshotter.state import LetterState
from snapshotter.store import StalePositionError, Store

log = logging.getLogger(__name__)
GROUP = SNAPSHOTTER_GROUP
# A commit refused for what it writes, not for the database's state: PostgreSQL's data
# exceptions (class 22: a value it cannot hold) and constraint violations (class 23), and
# arguments asyncpg cannot encode.
REFUSED_DATA = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    UnicodeEncodeError,
    OverflowError,
)


class Snapshotter:
    def __init__(
        self, settings: Settings, log_: Log, store: Store, metrics: Metrics | None = None
    ) -> None:
        self.settings = settings
        self.log = log_
        self.store = store
        self.topic = settings.topic(Topic.LETTERS)
        self.folder = Folder(settings, saving=SavePolicy.of(settings))
        self.positions: dict[int, int] = {}  # committed: next offset per partition
        self._unstored: set[int] = set()  # partitions with no stored position yet
        self._folded: dict[int, int] = {}  # folded (maybe not yet committed)
        self._pending: asyncio.Task[None] | None = None
        # partition -> last offset of a batch whose commit the database refused for its data
        self._careful: dict[int, int] = {}
        self.committed = asyncio.Event()  # set after each commit (tests and tools wait on it)
        self.metrics = Metrics() if metrics is None else metrics
        # Read at scrape time (the metrics thread; len() of a dict is atomic): free here.
        self.metrics.cached_letters.set_function(lambda: len(self.folder.letters))
        self.metrics.letters_pending.set_function(self._count_pending)

    def _count_pending(self) -> int:
        """Cached letters whose document held pending parts when last looked (each update and
        save looks: `LetterDocument.pending`), at a scrape, in the metrics thread: `list()`
        copies the cache in one step under the GIL (no Python code runs while it iterates), so
        the fold cannot change it midway; nothing is counted per update."""
        return sum(1 for state in list(self.folder.letters.values()) if state.doc.pending)

    async def run(self, partitions: Collection[int] | None = None) -> None:
        """Consume `partitions` (default: all) until cancelled; raises on a store failure,
        after which `run` again resumes from the stored positions. A record whose fold raises
        is folded again from the stored positions, then quarantined (snapshotter/quarantine.py).
        """
        while True:
            await self.resume(partitions)
            log.info("snapshotter following %s from %s", self.topic, self.positions)
            batch_size = self.settings.snapshotter_batch
            batches = self.log.follow(self.topic, dict(self.positions), batch_size)
            try:
                async for batch in self._until_a_commit_fails(batches):
                    await self.handle(batch)
                return
            except PoisonRecord as exc:
                log.error("snapshotter folding again from stored positions: %s", exc)
            finally:
                await batches.aclose()  # stops its consumer now, not whenever it is collected
                await self._abandon()

    async def _until_a_commit_fails(
        self, batches: AsyncIterator[list[Record]]
    ) -> AsyncIterator[list[Record]]:
        """`batches`, but a commit that fails while the log is quiet raises its error now: it
        used to wait in its task for the next batch's flush, so the last batch before a pause
        was neither committed nor retried until someone typed again."""
        while True:
            following = asyncio.ensure_future(anext(batches))
            try:
                while (pending := self._pending) is not None and not following.done():
                    await asyncio.wait([following, pending], return_when=FIRST_COMPLETED)
                    if pending.done():
                        await self.flush()  # raises the commit's error, or forgets the task
                batch = await following
            except StopAsyncIteration:
                return
            finally:
                if not following.done():
                    following.cancel()
                    await asyncio.gather(following, return_exceptions=True)
            yield batch

    async def _abandon(self) -> None:
        """On the way out: a commit in flight is cancelled (its transaction rolls back)."""
        pending, self._pending = self._pending, None
        if pending is not None and not pending.done():
            pending.cancel()
        if pending is not None:
            await asyncio.gather(pending, return_exceptions=True)

    async def resume(self, partitions: Collection[int] | None = None) -> None:
        """Forget cached state and start again from the stored positions."""
        await self._abandon()
        self.folder.forget()
        self._folded.clear()
        if partitions is None:
            partitions = range(await self.log.partition_count(self.topic))
        self.positions = await self._start_positions(partitions)
        for partition, committed in self.positions.items():
            await self._catch_up_listed(partition, committed)

    async def _start_positions(self, partitions: Collection[int]) -> dict[int, int]:
        stored = await self.store.positions(GROUP, self.topic)
        self._unstored = set(partitions) - set(stored)
        first = await self.log.start_offsets(self.topic)
        ends = await self.log.end_offsets(self.topic)
        for p in partitions:
            if stored.get(p, 0) > ends.get(p, 0):
                raise PositionPastEndError("snapshotter", self.topic, p, stored[p], ends.get(p, 0))
            if stored.get(p, 0) < first.get(p, 0):  # letters are kept forever: misconfigured
                log.error(
                    "%s/%d: records %d..%d are gone from the log; versions and audit "
                    "rows for them are missing",
                    self.topic,
                    p,
                    stored.get(p, 0),
                    first[p],
                )
        return {p: max(stored.get(p, 0), first.get(p, 0)) for p in partitions}

    async def handle(self, batch: Sequence[Record]) -> None:
        """Fold a batch, then commit it while the caller fetches (and we fold) the next one.

        Commits stay strictly sequential: each starts only after the previous one succeeded.
        """
        if not batch:
            return
        partition = batch[0].partition
        expected = self._folded.get(partition, self.positions[partition])
        records = [r for r in batch if r.offset >= expected]
        if not records:
            return
        careful_to = self._careful.get(partition)
        if careful_to is None or records[0].offset > careful_to:
            await self._fold_and_commit(partition, records)
            return
        # A commit of these offsets was refused for its data: one record per commit, so that
        # the record the database refuses is the one that gets counted (and quarantined).
        careful = [r for r in records if r.offset <= careful_to]
        for record in careful:
            await self._fold_and_commit(partition, [record])
        if careful[-1].offset == careful_to:
            del self._careful[partition]
        if rest := records[len(careful) :]:
            await self._fold_and_commit(partition, rest)

    async def _fold_and_commit(self, partition: int, records: Sequence[Record]) -> None:
        expected = self._folded.get(partition, self.positions[partition])
        try:
            await self._load(partition, expected, records)
            out = self.folder.fold(records)
        except BaseException:
            # A letter half folded by a failing record must never be saved (`checkpoint`).
            self.folder.forget()
            self._folded.clear()
            raise
        next_offset = records[-1].offset + 1
        self._folded[partition] = next_offset
        await self.flush()
        # Everything folded before this batch is committed: letters of this partition may be
        # saved with it (those evicted, and those unsaved for too long), and letters of other
        # partitions evicted to keep the cache bounded with commits of their own, after it.
        evicted = self.folder.evict(partition, keep=out.dirty)
        saved = [row for row in evicted if row.partition == partition]
        elsewhere = self._by_partition(row for row in evicted if row.partition != partition)
        saved += self.folder.stale(partition, time.monotonic() - self.settings.snapshotter_state_s)
        out.states += saved
        out.current.update(row.letter_id for row in saved)
        for letter_id in out.current:
            out.lagging.pop(letter_id, None)
        commit = self._commit(partition, expected, records, out, elsewhere)
        self._pending = asyncio.create_task(commit, name="snapshotter-commit")

    async def flush(self) -> None:
        """Wait for the commit in flight; on failure forget the state folded past the store."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        try:
            await pending
        except BaseException:
            self.folder.forget()
            self._folded.clear()
            raise

    async def _commit(
        self,
        partition: int,
        expected: int,
        records: Sequence[Record],
        out: BatchOutput,
        elsewhere: dict[int, list[StateRow]],
    ) -> None:
        if out.quarantined:  # idempotent; before the position moves past them
            await quarantine.write(self.store.pool, out.quarantined)
        next_offset = records[-1].offset + 1
        try:
            await self._store_commit(partition, expected, next_offset, out)
        except REFUSED_DATA as exc:
            # Something in these records the database cannot hold (pgtext handles what is
            # known). Retrying the batch would fail the same way, forever: find the record.
            if len(records) == 1:
                raise self.folder.quarantine.failed(records[0], exc) from exc
            self._careful[partition] = records[-1].offset
            raise PoisonRecord((self.topic, partition, records[0].offset), 1, exc) from exc
        self.positions[partition] = next_offset
        self.metrics.committed(out, batch=True)
        for other, rows in elsewhere.items():
            await self._save_states(other, self.positions[other], rows)
        self.committed.set()
        self.committed.clear()

    async def checkpoint(self) -> None:
        """On an orderly stop: save the letters whose state is ahead of its row, as far as the
        committed positions go (each with its partition's position compare-and-set, so an
        instance that lost the partition writes nothing). A restart then has nothing to fold
        again. A partition taken by another instance does not stop the others' saves: it is
        named in the StalePositionError raised at the end."""
        taken: list[StalePositionError] = []
        for partition, committed in self.positions.items():
            rows = self.folder.unsaved(partition, committed)
            if rows:
                try:
                    await self._save_states(partition, committed, rows)
                except StalePositionError as exc:
                    taken.append(exc)
                    continue
                log.info("saved %d letter states of %s/%d", len(rows), self.topic, partition)
        if taken:
            raise StalePositionError("; ".join(str(exc) for exc in taken))

    async def _save_states(self, partition: int, committed: int, rows: list[StateRow]) -> None:
        """Write letters' states of `partition` alone: its position stays at `committed`, the
        compare-and-set of which refuses the write if another instance took the partition."""
        out = BatchOutput(states=rows, current={row.letter_id for row in rows})
        await self._store_commit(partition, committed, committed, out)
        self.metrics.committed(out, batch=False)

    async def _store_commit(
        self, partition: int, expected: int, next_offset: int, out: BatchOutput
    ) -> None:
        """The store's compare-and-set from `expected`, or from no row at all when the
        partition had none at start: a row gone since then was reset, and refuses the commit."""
        stored = None if partition in self._unstored else expected
        await self.store.commit(GROUP, self.topic, partition, stored, next_offset, out)
        self._unstored.discard(partition)

    @staticmethod
    def _by_partition(rows: Iterable[StateRow]) -> dict[int, list[StateRow]]:
        grouped: dict[int, list[StateRow]] = {}
        for row in rows:
            grouped.setdefault(row.partition, []).append(row)
        return grouped

    async def _load(self, partition: int, expected: int, records: Sequence[Record]) -> None:
        missing = self.folder.uncached(records)
        if not missing:
            return
        states = await self.store.load_states(
            missing,
            field_name=self.folder.field,
            window_ms=self.folder.window_ms,
            committed=expected,
        )
        # Only a letter listed as lagging has committed records its row lacks; any other row
        # is current however far behind `expected` its `covers` is (a quiet letter).
        behind = [s for s in states if s.unsaved_from is not None and s.unsaved_from < expected]
        late = {s.letter_id for s in behind}
        self.folder.adopt(s for s in states if s.letter_id not in late)
        if behind:
            await self._catch_up(partition, expected, behind)

    async def _catch_up_listed(self, partition: int, committed: int) -> None:
        """Catch up every letter of `partition` listed as lagging (a crash left it so) and save
        it now, with a commit that leaves the position as it is: one read of the partition up
        to `committed` per cacheful of letters, paid once at start. Caught up only when next
        met, each letter would read the partition on its own, as far as it had grown by then,
        inside the commit loop. A letter whose records fail to fold is left to that path (it
        retries, then quarantines)."""
        listed = await self.store.lagging(self.topic, partition)
        size = self.folder.max_cached
        for first in range(0, len(listed), size):
            states = await self.store.load_states(
                listed[first : first + size],
                field_name=self.folder.field,
                window_ms=self.folder.window_ms,
                committed=committed,
            )
            behind = [
                s for s in states if s.unsaved_from is not None and s.unsaved_from < committed
            ]
            if not behind:
                continue
            # The letters cached so far are saved already (earlier groups): dropped for room.
            rows = self.folder.evict(partition, room=len(behind))
            try:
                rows += await self._catch_up(partition, committed, behind, carry=False)
            except PoisonRecord as exc:
                log.error("%s/%d: catching up at start failed: %s", self.topic, partition, exc)
            for each, its_rows in self._by_partition(rows).items():
                await self._save_states(each, self.positions[each], its_rows)

    async def _catch_up(
        self, partition: int, end: int, states: Sequence[LetterState], *, carry: bool = True
    ) -> list[StateRow]:
        """Fold into `states` their records from the offset each covers up to `end` (all
        committed): the log is read from the earliest, keeping only these letters' records,
        less those quarantined when they were folded first. Returns the rows saving them
        (written with the next batch if `carry`, else by the caller)."""
        start = min(s.covers if s.unsaved_from is None else s.unsaved_from for s in states)
        keys = {s.letter_id.encode() for s in states}
        skipped = await self.store.quarantined(self.topic, partition, start, end)
        records: list[Record] = []
        offset = start
        while offset < end:
            limit = min(self.settings.snapshotter_batch, end - offset)
            chunk = await self.log.read(self.topic, partition, offset, limit)
            if not chunk:
                break
            records += [
                r for r in chunk if r.offset < end and r.key in keys and r.offset not in skipped
            ]
            offset = chunk[-1].offset + 1
        rows = self.folder.catch_up(states, records, carry=carry)
        # What catching up cost: records read (any letter's) and their letters' folded again.
        self.folder.stats["catch-up read"] += offset - start
        self.folder.stats["catch-up folded"] += len(records)
        log.info(
            "%s/%d: %d letters caught up with %d records from offset %d (%d read)",
            self.topic,
            partition,
            len(states),
            len(records),
            start,
            offset - start,
        )
        return rows
