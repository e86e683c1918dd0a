"""The snapshotter's loop: follow the letters topic from the positions stored in PostgreSQL,
fold each batch, and commit its rows with the new position in one transaction.

`run` consumes the partitions the group membership (eventlog.group, driven by `service`)
assigned to this instance. Even if two instances briefly believed they owned one partition,
nothing would be written twice: the position compare-and-set in `store` rejects the slower one.
"""

import asyncio
import logging
from collections.abc import Collection, Sequence

from eventlog.records import Log, Record
from schemas.events import SNAPSHOTTER_GROUP, Topic
from schemas.settings import Settings
from snapshotter import quarantine
from snapshotter.fold import BatchOutput, Folder
from snapshotter.quarantine import PoisonRecord
from snapshotter.store import Store

log = logging.getLogger(__name__)
GROUP = SNAPSHOTTER_GROUP


class Snapshotter:
    def __init__(self, settings: Settings, log_: Log, store: Store) -> None:
        self.settings = settings
        self.log = log_
        self.store = store
        self.topic = settings.topic(Topic.LETTERS)
        self.folder = Folder(settings)
        self.positions: dict[int, int] = {}  # committed: next offset per partition
        self._folded: dict[int, int] = {}  # folded (maybe not yet committed)
        self._pending: asyncio.Task[None] | None = None
        self.committed = asyncio.Event()  # set after each commit (tests and tools wait on it)

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
                async for batch in batches:
                    await self.handle(batch)
                return
            except PoisonRecord as exc:
                log.error("snapshotter folding again from stored positions: %s", exc)
            finally:
                await batches.aclose()  # stops its consumer now, not whenever it is collected
                await self._abandon()

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

    async def _start_positions(self, partitions: Collection[int]) -> dict[int, int]:
        stored = await self.store.positions(GROUP, self.topic)
        first = await self.log.start_offsets(self.topic)
        for p in partitions:
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
        await self._load(records)
        out = self.folder.fold(records)
        next_offset = records[-1].offset + 1
        self._folded[partition] = next_offset
        await self.flush()
        self.folder.evict(keep=out.dirty)  # everything else in the cache is committed
        commit = self._commit(partition, expected, next_offset, out)
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
        self, partition: int, expected: int, next_offset: int, out: BatchOutput
    ) -> None:
        if out.quarantined:  # idempotent; before the position moves past them
            await quarantine.write(self.store.pool, out.quarantined)
        await self.store.commit(GROUP, self.topic, partition, expected, next_offset, out)
        self.positions[partition] = next_offset
        self.committed.set()
        self.committed.clear()

    async def _load(self, records: Sequence[Record]) -> None:
        missing = self.folder.uncached(records)
        if missing:
            states = await self.store.load_states(
                missing, field_name=self.folder.field, window_ms=self.folder.window_ms
            )
            self.folder.adopt(states)
