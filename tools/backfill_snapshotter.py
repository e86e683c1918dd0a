"""Backfill of the snapshotter: its own consumer (`snapshotter.consumer.Snapshotter`: fold +
one PostgreSQL transaction per batch with the position) fed the log up to the end offsets seen
at the start.

Resumable for free: rows and positions commit together, so a rerun continues from the last
committed batch. Letters' working states are saved as the service saves them: by its policy
while it runs, every letter as far as it goes at the end (an interrupted run leaves the letters
it had not saved listed as lagging, folded again when met). A reset truncates the snapshotter's
tables and positions in one transaction that also writes a marker row, so a rerun after an
interruption continues instead of wiping again. Chosen letters are rebuilt by the same fold
and store under a consumer group of their own, up to the position of the `snapshotter` group
(which then continues from the rebuilt state): their rows are deleted in the transaction that
creates that group's positions, after which the service commits nothing on those partitions
until the job's positions are gone (snapshotter/store.py `yield_to_rebuild`): the position the
job reads then, and folds up to, stays where it was until the job ends. A letter whose
partition the `snapshotter` group has no position on yet is left alone: that group will fold
the partition from the log's start, the letter included. A job records its letters with its
positions (`letters_jobs`), since its group (a hash) does not say which they were: a letters
run first finishes every interrupted job from them (a `--since` run again later chooses other
letters, so is another job). One snapshotter backfill run at a time, of letters or whole (an
advisory lock): a job under way is marked just as an interrupted one is, and a whole run's
store does not yield to its marker. The run folding a job holds a lock of its own for it,
saying whether it began the job or finishes it (schemas.rebuilds JOB_BEGUN, JOB_FINISHING):
the service's pause names each job's state from them.
"""

import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field

import asyncpg

from schemas.rebuilds import (
    JOB_BEGUN,
    JOB_FINISHING,
    LETTERS_JOBS,
    MARKER_GROUP,
    SNAPSHOTTER_LOCK,
    SNAPSHOTTER_RESET,
    job_key,
)
from snapshotter.consumer import GROUP, Snapshotter
from snapshotter.fold import Folder
from snapshotter.migrate import migrate
from snapshotter.store import StalePositionError, Store
from tools.backfill_projector import BackfillError
from tools.progress import Meter
from tools.sources import Sources

log = logging.getLogger(__name__)
# consumer_positions rows under MARKER_GROUP mark jobs; SNAPSHOTTER_RESET's is also read by the
# auditor routes (tools/rest.py), which refuse partial versions and history while it is there.
TABLES = (
    "letters, letter_version, collaboration, comment_threads, comments, snapshotter_letter_state,"
    " snapshotter_unsaved"
)
_LETTER_TABLES = (
    "comments", "comment_threads", "collaboration", "letter_version", "snapshotter_letter_state",
    "snapshotter_unsaved", "letters",
)  # fmt: skip


async def reset(pool: asyncpg.Pool) -> bool:
    """Truncate the snapshotter's tables and positions, unless an unfinished reset did."""
    async with pool.acquire() as conn, conn.transaction():
        # Before the tables: a running snapshotter's commit locks its position row first, then
        # writes the tables; taken the other way round, the two deadlock. This waits for the
        # commits in flight and holds back new ones, which then find their rows gone (stale).
        await conn.execute("LOCK TABLE consumer_positions IN SHARE ROW EXCLUSIVE MODE")
        if await _marker(conn, *SNAPSHOTTER_RESET):
            return False
        await conn.execute(f"TRUNCATE {TABLES}")
        await conn.execute("DELETE FROM consumer_positions WHERE consumer_group = $1", GROUP)
        # Letters jobs, an interrupted one included: this rebuilds every letter (and a job's
        # marker left would pause the service after it).
        await conn.execute(
            "DELETE FROM consumer_positions WHERE starts_with(consumer_group, $1)", LETTERS_JOBS
        )
        await conn.execute("DELETE FROM letters_jobs")
        await _set_marker(conn, *SNAPSHOTTER_RESET)
    return True


async def _marker(conn: asyncpg.Connection, topic: str, partition: int) -> bool:
    found = await conn.fetchval(
        "SELECT 1 FROM consumer_positions WHERE consumer_group = $1 AND topic = $2"
        " AND partition = $3",
        MARKER_GROUP,
        topic,
        partition,
    )
    return found is not None


async def _set_marker(conn: asyncpg.Connection, topic: str, partition: int) -> None:
    await conn.execute(
        "INSERT INTO consumer_positions (consumer_group, topic, partition, next_offset)"
        " VALUES ($1, $2, $3, 0) ON CONFLICT DO NOTHING",
        MARKER_GROUP,
        topic,
        partition,
    )


async def prepare(src: Sources) -> Store:
    assert src.settings.database_url is not None
    await migrate(src.settings.database_url)
    await _check_tables(src.pg)
    return Store(src.pg)


async def _check_tables(pool: asyncpg.Pool) -> None:
    """UndefinedTableError for a table of ours dropped by hand (migrations, applied once, do not
    make it again): found here even when no record left to fold would meet it."""
    names = [*_LETTER_TABLES, "consumer_positions", "letters_jobs"]
    found = await pool.fetch("SELECT name FROM unnest($1::text[]) AS name"
                             " WHERE to_regclass(name) IS NULL", names)  # fmt: skip
    if found:
        raise asyncpg.UndefinedTableError(f'relation "{found[0]["name"]}" does not exist')


async def run_all(src: Sources, meter: Meter, turn: asyncpg.Connection | None = None) -> int:
    """Fold every partition up to its current end, after finishing every interrupted letters
    job (its store does not yield to their markers: it would fold their letters' new records
    onto their part-rebuilt rows, found by a reviewer); returns events folded. Raises
    BackfillError for a job an older version marked, which recorded no letters. `turn`: the
    connection holding SNAPSHOTTER_LOCK (the caller's), for the jobs' locks (`_folding`)."""
    store = await prepare(src)
    first = await finish_interrupted(src, store, meter, turn=turn)
    if left := first.left:
        for job in left:
            print(UNRECORDED.format(job.group, job.partitions), file=meter.out, flush=True)
        raise BackfillError(
            "snapshotter: not run beside an unfinished --letters/--since job (above): finish it"
            " first"
        )
    topic = src.letters_topic
    snapshotter = Snapshotter(src.settings, src.log, store)
    await snapshotter.resume()
    ends = await src.log.end_offsets(topic)
    begin = dict(snapshotter.positions)
    # No `between` text: the count moves only when a batch is folded, and only then is the
    # meter told (the projector's rebuild polls it), so a text for the wait would never show.
    # Counted from 0: the jobs finished first had a meter of their own (and their events made
    # this one start part full).
    name = "snapshotter (this run)" if first.jobs else "snapshotter"
    meter.start(name, sum(max(e - begin.get(p, 0), 0) for p, e in ends.items()))
    done = 0
    try:
        while True:
            try:
                done = await _fold_to(src, snapshotter, ends, meter, done)
                break
            except StalePositionError as exc:
                # A running snapshotter service committed that batch first (without a reset
                # it follows the same positions): go on from where it got to.
                log.info("backfill continuing from the stored positions: %s", exc)
                await snapshotter.resume()
        # As the service on an orderly stop: its letters then load without folding again.
        with contextlib.suppress(StalePositionError):  # the service that moved them saves them
            await snapshotter.checkpoint()
    finally:
        meter.finish()
    async with src.pg.acquire() as conn:
        await conn.execute(
            "DELETE FROM consumer_positions WHERE consumer_group = $1 AND topic = $2",
            MARKER_GROUP,
            SNAPSHOTTER_RESET[0],
        )
    return first.events + done


async def _fold_to(
    src: Sources, snapshotter: Snapshotter, ends: dict[int, int], meter: Meter, done: int
) -> int:
    """Fold and commit every partition from the snapshotter's positions up to `ends`; returns
    `done` plus the events folded."""
    for partition, end in sorted(ends.items()):
        offset = snapshotter.positions.get(partition, 0)
        while offset < end:
            batch = await src.log.read(
                src.letters_topic, partition, offset, src.settings.snapshotter_batch
            )
            if not batch:
                break
            batch = [r for r in batch if r.offset < end]
            await snapshotter.handle(batch)
            done += len(batch)
            offset = batch[-1].offset + 1
            meter.advance_to(done)
    await snapshotter.flush()
    return done


def letters_group(letters: Iterable[str]) -> str:
    digest = hashlib.sha1("\n".join(sorted(set(letters))).encode()).hexdigest()[:12]
    return f"{LETTERS_JOBS}{digest}"


# One snapshotter backfill run at a time, of whole logs (tools/backfill.py) and of letters alike
# (schemas.rebuilds.SNAPSHOTTER_LOCK): a letters run finishes the jobs it finds marked, which
# must be interrupted ones, not another run's under way; and a whole run, whose store does not
# yield to a letters job's marker, would move the service's position on the job's partitions
# past where the job folds up to (found by a reviewer: the versions saved meanwhile were stored
# wrong).
FINISHING = "snapshotter: finishing an interrupted --letters/--since job ({}: {}) first"
UNRECORDED = (
    "snapshotter: an interrupted --letters/--since job ({} on partitions {}) was begun by an"
    " older version, which did not record its letters: this run cannot finish it, and the"
    " snapshotter service stays paused until it is done: run its command again with the same"
    " letters (--letters ...), or `steno-collab backfill snapshotter --from-beginning --reset`"
    " (which rebuilds every letter)"
)


@dataclass(frozen=True, slots=True)
class Job:
    """A letters job marked (under way or interrupted): its positions' partitions, and the
    letters it recorded (None: marked by an older version, which recorded none)."""

    group: str
    partitions: list[int]
    letters: list[str] | None


async def run_letters(
    src: Sources, letters: Iterable[str], meter: Meter, turn: asyncpg.Connection | None = None
) -> tuple[int, list[str]]:
    """Rebuild chosen letters' rows from the log, after finishing every interrupted letters
    job (one line each on the meter's output: their markers keep the service paused); returns
    events folded and the letters left to the `snapshotter` group (no position on their
    partition yet). `turn`: the connection on which the caller holds SNAPSHOTTER_LOCK (None:
    this run takes it)."""
    store = await prepare(src)
    given = sorted(set(letters))
    async with contextlib.AsyncExitStack() as stack:
        if turn is None:
            turn = await stack.enter_async_context(_letters_alone(src, meter))
        serving = await store.positions(GROUP, src.letters_topic)  # stays once stored (but a reset)
        waiting = [lid for lid in given if src.partition_of(lid) not in serving]
        wanted = [lid for lid in given if lid not in waiting]
        first = await finish_interrupted(src, store, meter, given, wanted, turn=turn)
        done = first.events
        for job in first.left:
            print(UNRECORDED.format(job.group, job.partitions), file=meter.out, flush=True)
        # Those just finished are rebuilt up to where the service is, as this job would be.
        rest = [lid for lid in wanted if lid not in first.letters]
        if rest:
            name = "snapshotter letters (this run)" if first.jobs else "snapshotter letters"
            done += await _rebuild(
                src, store, letters_group(rest), rest, meter, turn, JOB_BEGUN, name
            )
    return done, waiting


@dataclass
class Finished:
    """What `finish_interrupted` did: events folded, jobs finished and their letters, and the
    jobs left (an older version's this run cannot finish)."""

    events: int = 0
    jobs: int = 0
    letters: set[str] = field(default_factory=set)
    left: list[Job] = field(default_factory=list)


async def finish_interrupted(
    src: Sources,
    store: Store,
    meter: Meter,
    given: Sequence[str] = (),
    wanted: Sequence[str] = (),
    *,
    turn: asyncpg.Connection | None = None,
) -> Finished:
    """Finish every letters job marked (interrupted: the caller holds SNAPSHOTTER_LOCK, on
    `turn` if given), one line each, each with a meter naming it; an older version's, which
    recorded no letters, only if its group is the hash of `given` or `wanted` (this run's
    letters)."""
    finished = Finished()
    for job in await _jobs(src):
        chosen = job.letters if job.letters is not None else _adopted(job, wanted, given, wanted)
        if chosen is None:
            finished.left.append(job)
            continue
        print(FINISHING.format(job.group, _listed(chosen)), file=meter.out, flush=True)
        # Told apart from this run's own meter, which follows ("... events to fold" each).
        name = f"snapshotter letters (interrupted job {job.group})"
        finished.events += await _rebuild(
            src, store, job.group, chosen, meter, turn, JOB_FINISHING, name
        )
        finished.jobs += 1
        finished.letters.update(chosen)
    return finished


@contextlib.asynccontextmanager
async def _letters_alone(src: Sources, meter: Meter) -> AsyncIterator[asyncpg.Connection]:
    """Holds SNAPSHOTTER_LOCK; yields the connection holding it."""
    async with src.pg.acquire() as conn:  # its release unlocks too (asyncpg's reset)
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", SNAPSHOTTER_LOCK):
            print(
                "snapshotter: another backfill snapshotter run is under way: waiting for it to"
                " end, then this one runs",
                file=meter.out,
                flush=True,
            )
            await conn.execute("SELECT pg_advisory_lock($1)", SNAPSHOTTER_LOCK)
        try:
            yield conn
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", SNAPSHOTTER_LOCK)


async def _jobs(src: Sources) -> list[Job]:
    rows = await src.pg.fetch(
        "SELECT p.consumer_group, array_agg(p.partition ORDER BY p.partition) AS partitions,"
        " j.letters FROM consumer_positions p LEFT JOIN letters_jobs j USING (consumer_group)"
        " WHERE starts_with(p.consumer_group, $1) AND p.topic = $2"
        " GROUP BY p.consumer_group, j.letters ORDER BY 1",
        LETTERS_JOBS,
        src.letters_topic,
    )
    return [Job(r["consumer_group"], list(r["partitions"]), r["letters"]) for r in rows]


def _adopted(job: Job, wanted: Sequence[str], *candidates: Sequence[str]) -> list[str] | None:
    """The letters of an older version's `job` if they are this run's: its group hashed the
    letters given (those of them on a partition it did not mark begin there now)."""
    for letters in candidates:
        if letters_group(letters) == job.group:
            return [lid for lid in letters if lid in wanted]
    return None


def _listed(letters: list[str], shown: int = 5) -> str:
    more = f" and {len(letters) - shown} more" if len(letters) > shown else ""
    noun = "letter" if len(letters) == 1 else "letters"
    return f"{len(letters)} {noun}: {', '.join(letters[:shown])}{more}"


@contextlib.asynccontextmanager
async def _folding(
    src: Sources, turn: asyncpg.Connection | None, group: str, kind: int
) -> AsyncIterator[None]:
    """Holds the lock saying the job `group` is folded (`kind`: JOB_BEGUN, JOB_FINISHING) on
    `turn`, the connection holding SNAPSHOTTER_LOCK (None: one of the pool's): gone with it,
    as that one is. Nobody waits for it: one run folds at a time."""
    async with contextlib.AsyncExitStack() as stack:
        conn = turn if turn is not None else await stack.enter_async_context(src.pg.acquire())
        await conn.execute("SELECT pg_advisory_lock($1::int, $2::int)", kind, job_key(group))
        try:
            yield
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1::int, $2::int)", kind, job_key(group))


async def _rebuild(
    src: Sources,
    store: Store,
    group: str,
    letters: list[str],
    meter: Meter,
    turn: asyncpg.Connection | None,
    kind: int,
    name: str,
) -> int:
    """Rebuild `letters` (each on a partition the service has a position on) under `group`,
    marked or continued, its lock (`_folding`) held from before it is marked until its marker
    is gone; returns events folded."""
    async with _folding(src, turn, group, kind):
        return await _fold_letters(src, store, group, letters, meter, name)


async def _fold_letters(
    src: Sources, store: Store, group: str, letters: list[str], meter: Meter, name: str
) -> int:
    topic = src.letters_topic
    partitions = sorted({src.partition_of(lid) for lid in letters})
    positions = await _start_letters(src, store, group, letters, partitions)
    # Read once the job is marked: the service commits nothing on its partitions until it ends.
    serving = await store.positions(GROUP, topic)
    # A position deleted by hand meanwhile: the service folds the partition from the start.
    target = {p: serving.get(p, positions[p]) for p in partitions}
    meter.start(name, sum(target[p] - positions[p] for p in partitions))
    folder, keys, done = Folder(src.settings), {lid.encode() for lid in letters}, 0
    folder.adopt(
        await store.load_states(letters, field_name=folder.field, window_ms=folder.window_ms)
    )
    try:
        for p in partitions:
            offset = positions[p]
            while offset < target[p]:
                batch = await src.log.read(topic, p, offset, src.settings.snapshotter_batch)
                batch = [r for r in batch if r.offset < target[p]]
                if not batch:
                    break
                out = folder.fold([r for r in batch if r.key in keys])
                next_offset = batch[-1].offset + 1
                await store.commit(group, topic, p, offset, next_offset, out)
                done, offset = done + len(batch), next_offset
                meter.advance_to(done)
    finally:
        meter.finish()
    async with src.pg.acquire() as conn, conn.transaction():  # the service goes on from `target`
        await conn.execute("DELETE FROM consumer_positions WHERE consumer_group = $1", group)
        await conn.execute("DELETE FROM letters_jobs WHERE consumer_group = $1", group)
    return done


async def _start_letters(
    src: Sources, store: Store, group: str, letters: list[str], partitions: list[int]
) -> dict[int, int]:
    """The job's positions, its letters recorded with them. Those it has none on yet (all, for
    a new job) start at the log's start, their letters' rows deleted in the same transaction,
    so no reader sees the rows gone without the job's position that says where they begin again
    (gateway/live/loader.py `COVERAGE`). Those positions also mark the job to the service."""
    topic = src.letters_topic
    firsts = await src.log.start_offsets(topic)
    async with store.pool.acquire() as conn, conn.transaction():
        # As a reset does (and for the same order of locks): the service's commit in flight
        # ends first, its rows then deleted here, and its next ones on these partitions see
        # the marker and are refused (snapshotter/store.py), so its position stays put.
        await conn.execute("LOCK TABLE consumer_positions IN SHARE ROW EXCLUSIVE MODE")
        rows = await conn.fetch(
            "SELECT partition, next_offset FROM consumer_positions"
            " WHERE consumer_group = $1 AND topic = $2",
            group,
            topic,
        )
        # An interrupted run of this job continues. Partitions it did not mark begin: an older
        # version's job, its group the hash of the letters given, left those it had no
        # service's position on yet to the service, which may have one there now.
        stored = {r["partition"]: r["next_offset"] for r in rows}
        begun = [p for p in partitions if p not in stored]
        for p in begun:
            await conn.execute(
                "INSERT INTO consumer_positions (consumer_group, topic, partition, next_offset)"
                " VALUES ($1, $2, $3, $4)",
                group,
                topic,
                p,
                firsts.get(p, 0),
            )
        fresh = [lid for lid in letters if src.partition_of(lid) in begun]
        for table in _LETTER_TABLES if fresh else ():
            await conn.execute(f"DELETE FROM {table} WHERE letter_id = ANY($1::text[])", fresh)
        await conn.execute(
            "INSERT INTO letters_jobs (consumer_group, letters) VALUES ($1, $2)"
            " ON CONFLICT (consumer_group) DO UPDATE SET letters = EXCLUDED.letters",
            group,
            letters,
        )
    return {p: stored.get(p, firsts.get(p, 0)) for p in partitions}
