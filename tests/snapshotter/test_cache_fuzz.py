"""A bounded fuzz of the letter cache's evictions and saves on real PostgreSQL: a tiny cache
(so that letters of quiet partitions are evicted unsaved and saved with commits of their own),
random batches interleaved across partitions, and the snapshotter cancelled at random await
points of its commits (a batch's, or a save-only commit of another partition's letters), then
resumed by a fresh one from the stored positions. After an orderly stop every table, the
letters' saved states included, equals that of one uninterrupted run with a large cache.

Each seed is reproducible: the log, the batches (drawn afresh per round and restart) and the
trip points (counted statements of the strictly sequential commits) depend on it alone.
"""

import asyncio
import random
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import asyncpg
import pytest

from eventlog.embedded import EmbeddedLog
from eventlog.factory import topic_retention
from eventlog.records import Record
from schemas.envelope import Event
from schemas.settings import Settings
from snapshotter.consumer import Snapshotter
from snapshotter.store import Store
from tests.snapshotter.conftest import LETTERS
from tests.snapshotter.scripts import Clock, append, drain
from tests.snapshotter.streams import LetterStream
from tests.snapshotter.table_dump import dump
from tests.snapshotter.tripwire import ObservedSnapshotter, TrippedPool, Tripwire

SEEDS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
ROUNDS = 80
PARTITIONS = 3
LETTERS_PER_PARTITION = (3, 2, 2)
GAPS = [0.0, 0.2, 0.5, 1.0, 2.0, 7.0]  # seconds between records: bursts open and close
EVENTS_PER_ROUND = 8
CANCELLED_ROUNDS = 0.6  # rounds in which a trip is armed ...
TRIP_WITHIN = 30  # ... at one of the next this many points of the commits


@dataclass
class Plan:
    """What a seed decides before anything runs: sizes, and the events of each round."""

    seed: int
    max_cached: int
    max_batch: int
    settings: dict[str, Any]
    rounds: list[list[tuple[Event, float]]] = field(default_factory=list)


def make_plan(seed: int, log: EmbeddedLog) -> Plan:
    rng = random.Random(seed)
    plan = Plan(
        seed,
        max_cached=rng.choice([1, 2, 3]),
        max_batch=rng.choice([2, 4, 8]),
        settings={
            "partitions": PARTITIONS,
            "snapshotter_batch": rng.choice([2, 3, 5]),  # catch-up reads in chunks
            "snapshotter_state_records": rng.choice([2, 3, 5, 8]),
            "snapshotter_state_s": 3600.0,  # no saves by wall-clock age: they are not seeded
            "autosave_updates": rng.choice([4, 8, 15]),
            "autosave_activity_s": rng.choice([5.0, 20.0]),
        },
    )
    letters: dict[int, list[LetterStream]] = {p: [] for p in range(PARTITIONS)}
    index = 0
    while any(len(letters[p]) < n for p, n in enumerate(LETTERS_PER_PARTITION)):
        partition = log.partition_for(LETTERS, f"letter-{index:03d}".encode())
        if len(letters[partition]) < LETTERS_PER_PARTITION[partition]:
            letters[partition].append(LetterStream(index, rng))
        index += 1
    created: set[str] = set()
    active = set(range(PARTITIONS))
    for _ in range(ROUNDS):
        active ^= {p for p in range(PARTITIONS) if rng.random() < 0.3}  # quiet, or awake again
        active = active or {rng.randrange(PARTITIONS)}
        choices = [letter for p in sorted(active) for letter in letters[p]]
        events: list[tuple[Event, float]] = []
        for _ in range(rng.randint(1, EVENTS_PER_ROUND)):
            letter = rng.choice(choices)
            if letter.script.letter_id not in created:
                created.add(letter.script.letter_id)
                event = letter.script.created()
            else:
                event = letter.step()
            events.append((event, rng.choice(GAPS)))
        plan.rounds.append(events)
    return plan


class ScriptedLog(EmbeddedLog):
    """The embedded log, followed the way `Fuzz.batches` says."""

    fuzz: "Fuzz"

    def follow(
        self, topic: str, positions: Mapping[int, int], max_batch: int = 1000
    ) -> AsyncGenerator[list[Record], None]:
        return self.fuzz.batches(topic, positions)


@dataclass
class Fuzz:
    plan: Plan
    log: ScriptedLog
    clock: Clock
    wire: Tripwire
    snapshotter: Snapshotter | None = None
    appended: int = 0  # rounds in the log
    restarts: int = 0
    elsewhere: int = 0  # save-only commits of letters evicted from other partitions

    async def batches(
        self, topic: str, positions: Mapping[int, int]
    ) -> AsyncGenerator[list[Record], None]:
        """Each round: its events appended, then random batches of the partitions behind, in
        random order, until all are committed. Drawn afresh after a restart."""
        offsets = dict(positions)
        rng = random.Random(f"{self.plan.seed}/{self.appended}/{self.restarts}")
        batch: list[Record] = []
        while True:
            ends = await self.log.end_offsets(topic)
            while behind := [p for p in sorted(offsets) if offsets[p] < ends[p]]:
                partition = rng.choice(behind)
                size = rng.randint(1, self.plan.max_batch)
                batch = await self.log.read(topic, partition, offsets[partition], size)
                offsets[partition] = batch[-1].offset + 1
                yield batch
            await self._settled({p: ends[p] for p in offsets})
            await self._check_cache(list(offsets), batch)
            if self.appended == len(self.plan.rounds):
                return
            if rng.random() < CANCELLED_ROUNDS:
                self.wire.arm(rng.randint(1, TRIP_WITHIN), only_saves=rng.random() < 0.4)
            for event, gap in self.plan.rounds[self.appended]:
                self.clock.advance(gap)
                await append(self.log, topic, [event])
            self.appended += 1

    async def _settled(self, ends: dict[int, int]) -> None:
        """Wait for every commit, with the saves elsewhere it makes after it: a restart then
        resumes from the same round in every run of the seed."""
        snapshotter = self.snapshotter
        assert snapshotter is not None
        while snapshotter.positions != ends or not (
            snapshotter._pending is None or snapshotter._pending.done()
        ):
            await snapshotter.committed.wait()

    async def _check_cache(self, partitions: list[int], last: list[Record]) -> None:
        """Between rounds, everything committed: the cache is within its bound (or holds only
        the letters the last batch changed), and the rows of `partitions` say what the cache
        holds: a cached letter's row covers what it saved and is listed as lagging from where
        it was folded past it, if it was; a letter not cached is not listed (it was saved
        when evicted, or caught up at start)."""
        snapshotter = self.snapshotter
        assert snapshotter is not None
        cached = snapshotter.folder.letters
        assert len(cached) <= max(self.plan.max_cached, len({r.key for r in last}))
        rows = await snapshotter.store.pool.fetch(
            "SELECT letter_id, (state->>'covers')::bigint AS covers, since"
            " FROM snapshotter_letter_state LEFT JOIN snapshotter_unsaved USING (letter_id)"
            " WHERE log_partition = ANY($1::int[])",
            partitions,
        )
        for row in rows:
            letter_id, got = row["letter_id"], (row["covers"], row["since"])
            state = cached.get(letter_id)
            want = (got[0], None) if state is None else (state.saved_covers, state.unsaved_from)
            assert got == want, f"{letter_id} {'cached' if state else 'evicted'}"

    async def run(self, settings: Settings, store: Store) -> Snapshotter:
        """Run snapshotters until one of all partitions gets through every round; each
        cancelled one is replaced by a fresh one (nothing cached) resuming from the stored
        positions, sometimes of only some partitions (the others fall behind meanwhile)."""
        owned: list[int] | None = None  # all
        while True:
            snapshotter = ObservedSnapshotter(settings, self.log, store)
            snapshotter.folder.max_cached = self.plan.max_cached
            self.snapshotter = snapshotter
            task = asyncio.create_task(snapshotter.run(owned))
            self.wire.task = task
            await asyncio.wait([task])
            self.elsewhere += snapshotter.elsewhere
            if not task.cancelled():
                task.result()
                self.wire.left = None
                if owned is None:
                    return snapshotter
                await snapshotter.checkpoint()  # handed over in order: all of them next
                owned = None
                continue
            self.restarts += 1
            rng = random.Random(f"{self.plan.seed}/restart/{self.restarts}")
            owned = None
            if rng.random() < 0.3:
                owned = sorted(rng.sample(range(PARTITIONS), rng.randint(1, PARTITIONS - 1)))
            if self.wire.left is None and rng.random() < 0.3:
                # Again while catching up at start (its saves), or at the next save-only commit.
                self.wire.arm(rng.randint(1, 6), only_saves=True)


async def unsaved(dsn: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return [
            r[0] for r in await conn.fetch("SELECT letter_id FROM snapshotter_unsaved ORDER BY 1")
        ]
    finally:
        await conn.close()


@pytest.mark.parametrize("seed", SEEDS)
async def test_cancelled_at_random_commit_points_with_a_tiny_cache_ends_as_an_uninterrupted_run(
    seed: int,
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    db: str,
    reference_db: str,
) -> None:
    clock = Clock()
    probe = make_settings(partitions=PARTITIONS)
    log = ScriptedLog(tmp_path / "log", PARTITIONS, topic_retention(probe), clock=clock)
    await log.start()
    wire = Tripwire()
    store = Store(
        cast(asyncpg.Pool, TrippedPool(await asyncpg.create_pool(db, min_size=1, max_size=2), wire))
    )
    reference_store = await Store.open(reference_db)
    try:
        plan = make_plan(seed, log)
        settings = make_settings(**plan.settings)
        fuzz = Fuzz(plan, log, clock, wire)
        log.fuzz = fuzz
        async with asyncio.timeout(120):  # a commit that never ends fails, not hangs
            last = await fuzz.run(settings, store)
        await last.checkpoint()  # an orderly stop

        reference = Snapshotter(
            settings.model_copy(update={"database_url": reference_db}), log, reference_store
        )
        await drain(reference, log)
        await reference.checkpoint()

        trips = wire.trips
        print(f"seed {seed}: {plan.max_cached=} {fuzz.restarts=} {fuzz.elsewhere=} {trips=}")
        got, want = await dump(db), await dump(reference_db)
        for table, rows in want.items():
            assert got[table] == rows, f"seed {seed}: {table} differs ({trips})"
        assert await unsaved(db) == await unsaved(reference_db) == []
        # The fuzz did what it is for: letters of other partitions evicted and saved on their
        # own, and cancellations, some of them in those saves.
        assert fuzz.elsewhere >= 10
        assert fuzz.restarts == trips.total() >= 15
        assert sum(n for where, n in trips.items() if where.startswith("save-only commit task"))
        assert len(want["letter_version"]) >= 5 and len(want["collaboration"]) >= 50
    finally:
        await reference_store.close()
        await store.close()
        await log.close()
