"""The projector's loop: follow the owned partitions, fold each batch, write it with its positions.

Flow: group membership (eventlog.group) says which partitions are ours -> their positions are
read from Redis (absent: the partition is replayed from its start) -> one follower task per topic
feeds a queue -> the worker drains the queue into one batch, groups it by letter, folds every
letter once and writes the batch in one fenced script (store.commit). A fence that fails means
our view of Redis is stale: positions gone (FLUSHALL: replay from the start) or moved by another
instance (adopt them). A watchdog notices gone positions even when no records arrive. The
stale-connection sweep (projector.stale) runs under the same lock and writes through the same fence.
"""

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from functools import partial

from redis.exceptions import RedisError

from eventlog import Log, LogClosedError, LogError, Record
from eventlog.errors import PositionPastEndError
from eventlog.group import Assignment, GroupMember
from projector import quarantine
from projector.fold import Item, Outcome, fold_letter
from projector.metrics import Metrics
from projector.notes import note_views
from projector.reload import Versions, reload_letters
from projector.settings import ProjectorSettings
from projector.stale import LEFT_RETRY_S, StaleSweep
from projector.state import LetterState
from projector.store import TP, Store, Views, Write, views
from schemas import Event, EventDecodeError, Topic, decode_record
from schemas.outages import Outage
from schemas.settings import Settings

logger = logging.getLogger(__name__)

Fence = dict[TP, tuple[int | None, int]]
# Waits between reads of newly assigned partitions' positions while Redis does not answer.
TAKE_RETRY_FIRST_S, TAKE_RETRY_MAX_S = 0.5, 10.0
# Waits before refolding a batch that Redis or the log failed, doubling while they keep failing.
FOLD_RETRY_FIRST_S, FOLD_RETRY_MAX_S = 1.0, 10.0
# A log follow that ran this long without failing ends an outage (its warning was said once).
FOLLOW_HEALTHY_S = 5.0


class Projector:
    """One instance; `assigned`/`revoked` make it a group `RebalanceListener`."""

    # Another writer moved a position of ours: in the service, a second projector folding our
    # partitions (WARNING); in a backfill's (tools/backfill_projector.py), the service running
    # beside it, which folds the same ones: expected, INFO.
    moved_level = logging.WARNING

    def __init__(
        self,
        settings: Settings,
        options: ProjectorSettings,
        log: Log,
        store: Store,
        versions: Versions,
        metrics: Metrics,
        log_left: bool = True,
    ) -> None:
        """`log_left`: the sweep appends `session.left` for a dead gateway's connections (off
        on a read-only log: the embedded log's writer is the gateway's process)."""
        self.settings, self.options, self.log, self.store = settings, options, log, store
        self.versions, self.metrics = versions, metrics
        # The `gw` of what this instance appends: not a gateway's id, so every gateway's tail
        # delivers it (a gateway skips its own records, and a restarted one may reuse its id).
        self.identity = f"{options.group}:{socket.gethostname()}-{os.getpid()}"
        self.letters = settings.topic(Topic.LETTERS)
        self.kinds = {self.letters: Topic.LETTERS, settings.topic(Topic.PRESENCE): Topic.PRESENCE}
        self._lock = asyncio.Lock()  # one batch / rebalance / sweep at a time
        self._stale = StaleSweep(
            store, log, self.letters, metrics, stale_after_s=options.stale_after_s,
            gw=self.identity, log_left=log_left, retry_s=LEFT_RETRY_S,
        )  # fmt: skip
        self._queue: asyncio.Queue[tuple[int, list[Record]]] = asyncio.Queue(maxsize=32)
        self._followers: list[asyncio.Task[None]] = []
        self._epoch = 0
        self._owned: dict[str, frozenset[int]] = {}
        self._count_owned()  # 0 until assigned: a spare says so
        self._stored: dict[TP, int | None] = {}  # positions as in Redis (None: absent)
        self._next: dict[TP, int] = {}  # next offset to fold: the stored one, or the replay's
        self._rebuilds: dict[TP, tuple[float, int]] = {}  # started (monotonic), target offset
        self._gaps: set[TP] = set()  # partitions whose batch did not continue our position
        self._taking: asyncio.Task[None] | None = None  # reads the assigned positions
        self._positions_outage = Outage()  # reading the assigned positions
        # Positions that commits of ours whose outcome is unknown (Redis did not answer in time)
        # would set: such a commit may land later, which is no other writer's doing.
        self._unsure: dict[TP, set[int]] = {}
        # What taking partitions raised (a position past the log's end, say). Not raised from
        # `assigned`: on Kafka it runs inside aiokafka's rebalance, which logs a listener's
        # exception and carries on.
        self.failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # -- membership (eventlog.group.RebalanceListener) ---------------------------------------

    async def assigned(self, partitions: Assignment) -> None:
        await self._stop_taking()
        async with self._lock:
            self._owned = {t: frozenset(ps) for t, ps in partitions.items() if t in self.kinds}
            self._count_owned()
            # Not awaited: with Redis down the read waits for it, and a listener that blocks
            # stalls the group's rebalances (on Kafka, aiokafka's rebalance runs it).
            self._taking = asyncio.create_task(self._take_owned(), name="projector-take")

    async def _take_owned(self) -> None:
        """Read the owned partitions' positions, again with a backoff while Redis does not
        answer, then follow them. Until then they are owned but neither followed nor swept."""
        tps = [(t, p) for t, ps in self._owned.items() for p in sorted(ps)]
        delay = TAKE_RETRY_FIRST_S
        while not await self._try_take(tps):
            await asyncio.sleep(delay)
            delay = min(delay * 2, TAKE_RETRY_MAX_S)

    async def _try_take(self, tps: Sequence[TP]) -> bool:
        """One attempt; False if Redis did not answer."""
        async with self._lock:
            try:
                positions = await self.store.positions(tps)
            except RedisError as exc:
                msg = "positions unreadable, retrying until Redis answers: %s"
                self._positions_outage.failed(logger, msg, exc)
                return False
            if self._positions_outage.over():
                logger.info("positions read: Redis answers again")
            try:
                await self._take(positions)
            except Exception as exc:  # partitions we own and cannot fold: `entry.run` ends
                if not self.failed.done():
                    self.failed.set_exception(exc)
                return True
            self._restart_followers()
            logger.info("assigned %s", {t: sorted(ps) for t, ps in self._owned.items()})
            return True

    async def _stop_taking(self) -> None:
        task, self._taking = self._taking, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def revoked(self, partitions: Assignment) -> None:
        await self._stop_taking()
        async with self._lock:  # waits for the batch in flight: its write lands before we go
            # Returns once the followers are gone (a Kafka follower closes its consumer).
            await asyncio.gather(*self._stop_followers(), return_exceptions=True)
            for topic, owned in self._owned.items():  # another instance reports them now
                for p in owned:
                    with contextlib.suppress(KeyError):  # never reported
                        self.metrics.lag.remove(topic, str(p))
            self._owned, self._stored, self._next = {}, {}, {}
            self._rebuilds, self._unsure = {}, {}
            self._count_owned()
            logger.info("revoked %s", {t: sorted(ps) for t, ps in partitions.items()})

    def _count_owned(self) -> None:
        for topic in self.kinds:
            self.metrics.partitions_owned.labels(topic).set(len(self._owned.get(topic, ())))

    async def close(self) -> None:
        """Stop following (the group membership normally does it through `revoked`)."""
        await self._stop_taking()
        await asyncio.gather(*self._stop_followers(), return_exceptions=True)

    @property
    def owned(self) -> dict[str, frozenset[int]]:
        """Topic -> the partitions this instance folds right now."""
        return dict(self._owned)

    # -- the loop ------------------------------------------------------------------------------

    async def work(self) -> None:
        """Fold batches until cancelled. Redis or log trouble drops the batch, waits (1 s, then
        twice as long each time it fails again, up to FOLD_RETRY_MAX_S) and re-reads from the
        stored positions; anything else is a bug and ends the process. An outage is warned of
        once, and its end once: not a line per attempt."""
        delay, outage = FOLD_RETRY_FIRST_S, Outage()
        while True:
            batches = await self._next_batches()
            try:
                async with self._lock:
                    wrote = await self._fold([b for epoch, b in batches if epoch == self._epoch])
            except (RedisError, LogError) as exc:
                outage.failed(
                    logger, "batch not folded (failure %d), retrying from the stored positions "
                    "in %g s: %s", outage.attempt, delay, exc,
                )  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(delay * 2, FOLD_RETRY_MAX_S)
                async with self._lock:
                    self._restart_followers()
                continue
            # A batch that reached Redis, not one dropped before it, ends the outage.
            if wrote and outage.recovered(
                logger, "batches folded again, after %s", unit="failed attempt"
            ):
                delay = FOLD_RETRY_FIRST_S

    async def _next_batches(self) -> list[tuple[int, list[Record]]]:
        """What is queued, up to `batch_records`. While catching up (records older than
        `catchup_after_ms`) it waits a little for more: the cost of a batch grows with the letters
        it touches, not with its events, so big batches make replays fast. Live, it never waits."""
        batches = [await self._queue.get()]
        size = len(batches[0][1])
        while size < self.options.batch_records:
            if not self._queue.empty():
                batches.append(self._queue.get_nowait())
            elif self._behind(batches[-1][1]):
                # Not wait_for(queue.get()): on a timeout it can drop the item it just got.
                await asyncio.sleep(0.02)
                if self._queue.empty():
                    break
                batches.append(self._queue.get_nowait())
            else:
                break
            size += len(batches[-1][1])
        return batches

    def _behind(self, batch: list[Record]) -> bool:
        return time.time() * 1000 - batch[-1].timestamp > self.options.catchup_after_ms

    async def report(self, member: GroupMember | None) -> None:
        """Lag per partition (end offset - position) and, for dashboards, group commits. Needs
        the log only: while Redis is down it keeps rising from the last positions known, the
        group's commits for partitions assigned since (their positions are still unread). A report
        whose lag was read sets `projector_lag_measured_at_seconds` (none while nothing is owned),
        before its commits, whose failure says nothing of the lag."""
        commits: dict[str, tuple[frozenset[int], dict[int, int]]] = {}
        for topic, partitions in self._owned.items():
            ends = await self.log.end_offsets(topic)
            mine = {p: self._next[(topic, p)] for p in partitions if (topic, p) in self._next}
            last = dict(mine)
            if len(mine) < len(partitions):
                committed = await self.log.committed(self.options.group, topic)
                last |= {p: committed[p] for p in partitions - mine.keys() if p in committed}
            if self._owned.get(topic) is not partitions:  # a rebalance came meanwhile: its
                continue  # `revoked` removed these labels, and the next report sets the new ones
            for p, position in last.items():
                self.metrics.lag.labels(topic, str(p)).set(max(ends.get(p, 0) - position, 0))
            if mine:
                commits[topic] = partitions, mine
        if any(self._owned.values()):  # measured (the lag keeps its last value while the log
            # cannot be read: this time then stops)
            self.metrics.lag_measured.set_to_current_time()
        for topic, (partitions, mine) in commits.items():
            if member is not None and self._owned.get(topic) is partitions:  # still ours
                await member.commit(topic, mine)

    async def check(self) -> None:
        """Watchdog: positions gone from Redis (a wipe) are noticed even without new records."""
        async with self._lock:
            known = [tp for tp, v in self._stored.items() if v is not None]
            actual = await self.store.positions(known)
            moved = {tp: v for tp, v in actual.items() if v != self._stored[tp]}
            if moved:
                await self._moved(moved)

    async def _fold(self, batches: Sequence[list[Record]]) -> bool:
        """Fold and write `batches`; False if nothing in them was ours to write."""
        started = time.perf_counter()
        items, partition_of, fence = self._collect(batches)
        if self._gaps:
            await self._refollow()
        if not fence:
            return False
        states = await self._states(items, partition_of)
        writes = []
        # Counted once Redis has the batch: a batch retried after a failed write counts once.
        folded: Counter[str] = Counter()
        pending = 0
        for lid, mine in items.items():
            state, before = states[lid]
            # Views unknown (a reloaded letter): what its last write notified is in its state
            # before the batch, which the reload rebuilt.
            notified = frozenset(note_views(state)) if before is None else frozenset()
            try:
                outcome = fold_letter(state, mine, self.settings.doc_field)
            except quarantine.PASSTHROUGH:
                raise
            except BaseException as exc:  # a pycrdt panic or a bug: find the record (issue 9)
                logger.error("folding %s failed, isolating its records: %r", lid, exc)
                state, before = (await self._states({lid: mine}, partition_of))[lid]
                state, outcome = await self._isolate(state, mine, partition_of[lid])
            for kind, offset, why in outcome.poison:
                self._poison(kind, partition_of[lid], offset, why)
            folded.update(outcome.folded)
            if outcome.folded["doc.update"] and not state.doc_clean:  # the fold said so
                pending += 1
            writes.append(Write(before, state, partition_of[lid], notified))
        if not await self._commit(fence, writes):
            return True
        self._committed(fence)
        for type_, n in folded.items():
            self.metrics.folded.labels(type_).inc(n)
        self.metrics.pending_folds.inc(pending)
        self.metrics.batch_records.observe(sum(len(b) for b in batches))
        self.metrics.batch_letters.observe(len(items))
        self.metrics.fold_seconds.observe(time.perf_counter() - started)
        return True

    def _collect(
        self, batches: Sequence[list[Record]]
    ) -> tuple[dict[str, list[Item]], dict[str, int], Fence]:
        """Decode the records that continue our positions, grouped by letter."""
        items: dict[str, list[Item]] = {}
        partition_of: dict[str, int] = {}
        fence: Fence = {}
        upto = dict(self._next)
        for batch in batches:
            tp = (batch[0].topic, batch[0].partition)
            fresh = [r for r in batch if r.offset >= upto.get(tp, 0)]
            if tp not in upto or not fresh:
                continue  # a partition we no longer own, or records we folded already
            if fresh[0].offset != upto[tp]:
                self._gaps.add(tp)  # records missing in between: read them again
                continue
            for r in fresh:
                event = self._decode(r)
                if event is not None:
                    kind = self.kinds[r.topic]
                    items.setdefault(event.letter_id, []).append(Item(kind, r.offset, event))
                    partition_of[event.letter_id] = r.partition
            upto[tp] = fresh[-1].offset + 1
            fence[tp] = (self._stored[tp], upto[tp])
        return items, partition_of, fence

    async def _isolate(
        self, state: LetterState, items: list[Item], partition: int
    ) -> tuple[LetterState, Outcome]:
        topic_of = {kind: topic for topic, kind in self.kinds.items()}
        field = self.settings.doc_field
        state, outcome, bad = quarantine.isolate(state, items, field, topic_of, partition)
        if bad:  # recorded before the position moves past them
            await self.store.quarantine({entry.position: entry.to_json() for entry in bad})
        for entry in bad:
            self.metrics.poison.labels(entry.topic).inc()
        return state, outcome

    def _decode(self, r: Record) -> Event | None:
        try:
            return decode_record(r.key, r.value, r.headers)
        except EventDecodeError as exc:
            self._poison(self.kinds[r.topic], r.partition, r.offset, str(exc))
            return None

    def _poison(self, kind: Topic, partition: int, offset: int, why: str) -> None:
        topic = self.settings.topic(kind)
        self.metrics.poison.labels(topic).inc()
        logger.warning("skipping poison record %s/%d@%d: %s", topic, partition, offset, why)

    async def _states(
        self, items: Mapping[str, list[Item]], partition_of: Mapping[str, int]
    ) -> dict[str, tuple[LetterState, Views | None]]:
        """Each letter's state before the batch, and what its public keys hold (if known)."""
        loaded = await self.store.load(items)
        states: dict[str, tuple[LetterState, Views | None]]
        states = {lid: (s, views(s)) for lid, s in loaded.items() if s}
        absent = {lid: partition_of[lid] for lid, s in loaded.items() if s is None}
        known = await self.store.known(absent) if absent else set()
        cold: dict[int, list[str]] = {}
        for lid in absent:
            if lid in known and not self._created(items[lid]):
                cold.setdefault(partition_of[lid], []).append(lid)  # expired: reload it
            else:
                states[lid] = (LetterState(lid), None)  # never folded: nothing to reload
        for partition, lids in cold.items():
            reloaded = await self._reload(partition, lids)
            states.update({lid: (s, None) for lid, s in reloaded.items()})
        return states

    @staticmethod
    def _created(items: list[Item]) -> bool:
        """The batch starts the letter's history: there is nothing before it to reload."""
        first = next((i for i in items if i.topic is Topic.LETTERS), None)
        return first is not None and first.event.type == "letter.created"

    async def _reload(self, partition: int, lids: list[str]) -> dict[str, LetterState]:
        started = time.perf_counter()
        upto = self._next.get((self.letters, partition), 0)
        states = await reload_letters(
            self.log, self.versions, self.letters, partition, lids, upto, self.settings.doc_field
        )
        self.metrics.reloads.inc(len(lids))
        logger.info(
            "reloaded %d expired letter(s) of %s/%d up to offset %d in %.3fs",
            len(lids), self.letters, partition, upto, time.perf_counter() - started,
        )  # fmt: skip
        return states

    async def _commit(self, fence: Fence, writes: Sequence[Write]) -> bool:
        """Write `writes`, moving the positions of `fence`; False if Redis holds other positions
        than ours (nothing was written; theirs are adopted)."""
        full = self._fenced(fence, (w.partition for w in writes))
        # Replays of the letters topic are marked for readers (comments, notifications):
        # presence records change neither. Also those of partitions whose letters this commit
        # writes without their letters position (none yet after a wipe: a presence-only batch
        # writes `comments:<id>` = [] and an offset, which would read as "folded, no threads").
        touched = {w.partition for w in writes} | {p for _, p in full}
        replays = {
            tp: end
            for tp, (_, end) in self._rebuilds.items()
            if tp[0] == self.letters and tp[1] in touched
        }
        marked = [tp for tp in full if tp[0] == self.letters]
        try:
            actual = await self.store.commit(full, writes, replays, marked)
        except RedisError:
            # Perhaps sent and unanswered (a timeout, Redis paused): it may land yet.
            for tp, (_, new) in fence.items():
                self._unsure.setdefault(tp, set()).add(new)
            raise
        if actual is None:
            for tp in fence:  # an earlier unanswered one that lands now fails its fence
                self._unsure.pop(tp, None)
            return True
        await self._moved({tp: v for tp, v in actual.items() if v != self._stored[tp]})
        return False

    def _fenced(self, fence: Fence, partitions: Iterable[int]) -> Fence:
        """The batch's positions plus the unchanged ones of its letters' partitions in the other
        topic: a letter's state is shared by its letters and presence partitions."""
        full = dict(fence)
        for p in set(partitions):
            for topic in self.kinds:
                stored = self._stored.get((topic, p))
                if (topic, p) not in full and stored is not None:
                    full[(topic, p)] = (stored, stored)
        return full

    def _committed(self, fence: Fence) -> None:
        for tp, (_, new) in fence.items():
            self._stored[tp] = self._next[tp] = new
            self._rebuilt(tp)

    # -- positions ------------------------------------------------------------------------------

    async def _take(self, positions: Mapping[TP, int | None]) -> None:
        """Start each partition at its stored position, or replay it from its first offset."""
        topics = {topic for topic, _ in positions}
        starts = {t: await self.log.start_offsets(t) for t in topics}  # one request per topic
        ends = {t: await self.log.end_offsets(t) for t in topics}
        for tp, stored in positions.items():
            start, end = starts[tp[0]].get(tp[1], 0), ends[tp[0]].get(tp[1], 0)
            if stored is not None and stored > end:
                raise PositionPastEndError("projector", tp[0], tp[1], stored, end)
            self._stored[tp] = stored
            self._next[tp] = start if stored is None else max(stored, start)
            if stored is not None:
                # Positions adopted from another writer: not ours to mark as replayed (a commit
                # of theirs or ours that reaches the marker's target clears it in Redis).
                self._rebuilds.pop(tp, None)
            elif end > start:
                self._rebuilds[tp] = (time.monotonic(), end)
                self.metrics.rebuilds.labels(tp[0]).inc()
                logger.info("rebuilding %s/%d from offset %d to %d", *tp, start, end)

    def _rebuilt(self, tp: TP) -> None:
        started, target = self._rebuilds.get(tp, (0.0, -1))
        if target >= 0 and self._next[tp] >= target:
            del self._rebuilds[tp]
            logger.info(
                "rebuilt %s/%d: %d records in %.3fs", *tp, target, time.monotonic() - started
            )

    async def _moved(self, actual: Mapping[TP, int | None]) -> None:
        """Redis holds other positions than ours: gone (wiped), advanced by another member, or
        by a commit of ours that Redis did not answer in time but ran later."""
        for tp, value in actual.items():
            ours = self._unsure.pop(tp, set())
            if value is None:
                logger.warning("position of %s/%d is gone (Redis wiped?): replaying", *tp)
            elif value in ours:
                logger.info("position of %s/%d is at %d: our unanswered commit landed", *tp, value)
            else:
                logger.log(
                    self.moved_level, "position of %s/%d moved to %d by another writer", *tp, value
                )
        await self._take(actual)
        self._restart_followers()

    async def _refollow(self) -> None:
        """A follower skipped records (or retention removed them): follow again from ours."""
        for tp in self._gaps:
            start = (await self.log.start_offsets(tp[0])).get(tp[1], 0)
            if start > self._next[tp]:
                logger.warning("%s/%d: records below %d are gone (retention)", *tp, start)
                self._next[tp] = start
        self._gaps = set()
        self._restart_followers()

    # -- followers ------------------------------------------------------------------------------

    def _restart_followers(self) -> None:
        self._stop_followers()
        for topic, partitions in self._owned.items():
            positions = {p: self._next[(topic, p)] for p in partitions if (topic, p) in self._next}
            if positions:
                task = asyncio.create_task(self._follow(topic, positions, self._epoch))
                self._followers.append(task)

    def _stop_followers(self) -> list[asyncio.Task[None]]:
        """Cancel the followers; returns them, for callers that wait until they are gone."""
        stopped, self._followers = self._followers, []
        for task in stopped:
            task.cancel()
        self._epoch += 1  # batches already queued by them are dropped by the worker
        while not self._queue.empty():
            self._queue.get_nowait()
        return stopped

    async def _follow(self, topic: str, positions: dict[int, int], epoch: int) -> None:
        outage = Outage()
        # Said when a record comes, or a try ran FOLLOW_HEALTHY_S without failing.
        again = partial(
            outage.recovered, logger, "following %s again, after %s", topic, unit="failure"
        )

        while True:
            # A quiet topic brings no record to say the log is back: a try that lasts says it.
            healthy = asyncio.get_running_loop().call_later(FOLLOW_HEALTHY_S, again)
            try:
                follow = self.log.follow(topic, positions, self.options.follow_batch)
                async with contextlib.aclosing(follow) as batches:  # a cancel stops its consumer
                    async for batch in batches:
                        again()
                        if batch:
                            await self._queue.put((epoch, batch))
            except LogClosedError:
                return
            except LogError as exc:
                outage.failed(logger, "following %s failed, retrying every 1 s: %s", topic, exc)
                await asyncio.sleep(1.0)
                # Re-read from what is folded; the worker drops what it already has.
                positions = {p: self._next.get((topic, p), o) for p, o in positions.items()}
            finally:
                healthy.cancel()

    # -- stale connections ------------------------------------------------------------------------

    async def sweep(self) -> None:
        """Log `session.left` for the connections of dead gateways and drop them (README
        "Operations": stale connections). Its writes move no position: fenced at ours."""
        async with self._lock:
            # Only partitions whose positions are read: the commit fences their writes on them.
            taken = [
                p for p in self._owned.get(self.letters, ()) if (self.letters, p) in self._next
            ]
            await self._stale.sweep(taken, partial(self._commit, {}))
