"""An interrupted `backfill snapshotter --letters/--since` job is finished by the next such run,
whatever letters that run chooses (README "Rebuilding and auditing"): a `--since` run again
later picks other letters, so is another job, and the old job's marker kept the snapshotter
service paused until a reset. A job whose letters have reached a partition it did not mark
(the service had no position there when it began) is finished too: its rerun hit a KeyError.
"""

import asyncio
import io
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest
import pytest_asyncio

from eventlog import Log
from eventlog.embedded import EmbeddedLog
from eventlog.factory import topic_retention
from schemas.events import Topic
from schemas.rebuilds import LETTERS_JOBS
from schemas.settings import LOG_FOLDER, Settings
from tests.snapshotter.scripts import Clock, LetterScript, append
from tests.support import eventually
from tests.tools.conftest import pool
from tests.tools.letters_jobs import (
    FINISHING,
    PAUSED,
    agrees,
    held_job,
    interrupted,
    letters_apart,
    marked,
    positions,
    positions_are,
)
from tests.tools.snapshots import snapshot_all
from tools import backfill_snapshotter, verify
from tools.backfill import active_since, backfill
from tools.backfill_projector import BackfillError
from tools.progress import Meter
from tools.sources import Sources


@pytest.fixture
def log_kind() -> str:
    return "embedded"


@pytest_asyncio.fixture(loop_scope="session")
async def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(partitions=2)  # a job's letters on one partition, or on both


@pytest.fixture
def clock() -> Clock:
    return Clock()  # the log's: `--since` picks letters by their records' log timestamps


@pytest_asyncio.fixture(loop_scope="session")
async def log(settings: Settings, clock: Clock) -> AsyncIterator[Log]:
    the_log = EmbeddedLog(
        settings.data_dir / LOG_FOLDER, settings.partitions, topic_retention(settings), clock=clock
    )
    await the_log.start()
    try:
        yield the_log
    finally:
        await the_log.close()


@pytest.mark.parametrize("rerun", ["earlier", "later"])
async def test_a_since_job_run_again_choosing_other_letters_finishes_the_interrupted_one(
    settings: Settings,
    log: Log,
    clock: Clock,
    pg: asyncpg.Pool,
    serving: asyncio.Task[None],
    caplog: pytest.LogCaptureFixture,
    rerun: str,
) -> None:
    """`--since` the old letter's time chooses both letters, `--since` the new one's only the
    new one: run again with the other instant, the job is another one, and the interrupted
    one, finished first, no longer keeps the service paused."""
    topic = settings.topic(Topic.LETTERS)
    old, new = letters_apart(log, topic)
    a, b = LetterScript(old), LetterScript(new)
    early = clock.ms
    await append(log, topic, [a.created(), a.comment("ann", "t1", "c1", "first")])
    clock.advance(3600)
    late = clock.ms
    await append(log, topic, [b.created(), b.comment("bob", "t2", "c2", "second")])
    pa, pb = log.partition_for(topic, old.encode()), log.partition_for(topic, new.encode())
    await eventually(lambda: positions_are(pg, topic, {pa: 2, pb: 2}, serving), timeout=30)

    src = Sources(settings, log, pg=pg)
    first, again = (late, early) if rerun == "earlier" else (early, late)
    chosen = await active_since(src, first)
    assert chosen == ([new] if rerun == "earlier" else sorted([old, new]))
    await interrupted(src, chosen)
    # Logged while the job is marked: the service pauses, and folds it once the job is done.
    await append(log, topic, [b.reply("carol", "t2", "c3", "third")])
    await eventually(lambda: PAUSED in caplog.text, timeout=30)
    assert "run any backfill snapshotter (it finishes this one first)" in caplog.text

    out = io.StringIO()
    summary = await backfill(src, "snapshotter", since_ms=again, meter=Meter(out=out))
    job = backfill_snapshotter.letters_group(chosen)
    assert f"{FINISHING} ({job}" in out.getvalue(), out.getvalue()
    assert await marked(pg) == []
    assert summary.targets[0].startswith("snapshotter: ")

    await append(log, topic, [a.resolve("ann", "t1"), b.resolve("bob", "t2")])
    await eventually(lambda: positions_are(pg, topic, {pa: 3, pb: 4}, serving), timeout=30)
    assert "snapshotter resuming" in caplog.text
    await agrees(src, [old, new])


async def test_a_job_whose_letters_reach_a_partition_it_did_not_mark_is_finished(
    settings: Settings, log: Log, pg: asyncpg.Pool
) -> None:
    """The job left one letter to the snapshotter (no position on its partition yet); the
    snapshotter then folded that partition (another instance of it, owning that partition only,
    does not pause for the job), so the same command run again rebuilds that letter too: it
    used to look for the job's position there (KeyError)."""
    topic = settings.topic(Topic.LETTERS)
    old, new = letters_apart(log, topic)
    a, b = LetterScript(old), LetterScript(new)
    await append(log, topic, [a.created(), a.comment("ann", "t1", "c1", "first")])
    await snapshot_all(settings, log)  # the other partition holds nothing: no position there
    await append(log, topic, [b.created(), b.comment("bob", "t2", "c2", "second")])
    src = Sources(settings, log, pg=pg)
    await interrupted(src, [old, new])
    await snapshot_all(settings, log)  # the new letter's partition only: the other is at its end
    assert len(await positions(pg, topic)) == 2

    out = io.StringIO()
    done = await backfill_snapshotter.run_letters(src, [old, new], Meter(out=out))
    assert done == (4, [])  # each letter's two records, once
    group = backfill_snapshotter.letters_group([old])  # the job was the old letter's alone
    assert f"{FINISHING} ({group}" in out.getvalue(), out.getvalue()
    assert await marked(pg) == []
    await agrees(src, [old, new])


async def test_a_job_marked_by_an_older_version_is_finished_or_named(
    settings: Settings, log: Log, pg: asyncpg.Pool
) -> None:
    """An older version recorded no letters with its job, its group the hash of the letters
    given: run again with the same letters it is finished (its letter left to the service,
    whose partition the service has folded since, too: that used to be the KeyError); another
    is named, with the reset that clears it."""
    topic = settings.topic(Topic.LETTERS)
    old, new = letters_apart(log, topic)
    a, b = LetterScript(old), LetterScript(new)
    await append(log, topic, [a.created(), a.comment("ann", "t1", "c1", "first")])
    await snapshot_all(settings, log)
    await append(log, topic, [b.created(), b.comment("bob", "t2", "c2", "second")])
    src = Sources(settings, log, pg=pg)
    await interrupted(src, [old, new])
    group = backfill_snapshotter.letters_group([old, new])
    # As an older version left it: no letters recorded, the letters given hashed.
    await pg.execute("DELETE FROM letters_jobs")
    await pg.execute(
        "UPDATE consumer_positions SET consumer_group = $1 WHERE starts_with(consumer_group, $2)",
        group,
        LETTERS_JOBS,
    )
    await snapshot_all(settings, log)
    other = f"{LETTERS_JOBS}0123456789ab"  # an older version's job of other letters
    pb = log.partition_for(topic, new.encode())
    await pg.execute(
        "INSERT INTO consumer_positions (consumer_group, topic, partition, next_offset)"
        " VALUES ($1, $2, $3, 0)",
        other,
        topic,
        pb,
    )

    out = io.StringIO()
    assert await backfill_snapshotter.run_letters(src, [old, new], Meter(out=out)) == (4, [])
    said = out.getvalue().splitlines()
    listed = ", ".join(sorted([old, new]))
    assert [line for line in said if group in line] == [
        f"{FINISHING} ({group}: 2 letters: {listed}) first",
        f"snapshotter letters (interrupted job {group}): 4 events to fold",
    ]
    (named,) = [line for line in said if other in line]
    assert f"on partitions [{pb}]" in named, named
    assert "backfill snapshotter --from-beginning --reset" in named, named
    assert await marked(pg) == [other]  # the reset's to clear
    await agrees(src, [old, new], finished=False)


async def test_a_run_waits_for_another_rather_than_finish_its_job(
    settings: Settings, log: Log, pg: asyncpg.Pool, db: str
) -> None:
    """A job under way is marked as an interrupted one is: a second run waits for the first
    (saying so) instead of folding that job beside it."""
    topic = settings.topic(Topic.LETTERS)
    old, new = letters_apart(log, topic)
    a, b = LetterScript(old), LetterScript(new)
    await append(log, topic, [a.created(), a.comment("ann", "t1", "c1", "first")])
    await append(log, topic, [b.created(), b.comment("bob", "t2", "c2", "second")])
    await snapshot_all(settings, log)
    first, go = await held_job(settings, log, pg, [old])
    other_pg, out = await pool(db), io.StringIO()  # each run holds a connection for its lock
    other_src = Sources(settings, log, pg=other_pg)
    second = asyncio.create_task(backfill_snapshotter.run_letters(other_src, [new], Meter(out)))
    try:
        await eventually(lambda: "waiting for it to end" in out.getvalue(), timeout=30)
        assert not second.done()
        go.set()
        assert await asyncio.wait_for(first, 30) == (2, [])
        assert await asyncio.wait_for(second, 30) == (2, [])
    finally:
        for task in (first, second):
            task.cancel()
        await asyncio.gather(first, second, return_exceptions=True)
        await other_pg.close()
    assert FINISHING not in out.getvalue()
    assert await marked(pg) == []
    await agrees(Sources(settings, log, pg=pg), [old, new])


async def test_a_reset_deletes_the_jobs_letters_with_their_markers(
    settings: Settings, log: Log, pg: asyncpg.Pool
) -> None:
    topic, s = settings.topic(Topic.LETTERS), LetterScript("L-reset")
    await append(log, topic, [s.created()])
    await snapshot_all(settings, log)
    await interrupted(Sources(settings, log, pg=pg), ["L-reset"])
    assert len(await pg.fetch("SELECT * FROM letters_jobs")) == 1
    assert await backfill_snapshotter.reset(pg)
    assert await marked(pg) == [] and await pg.fetch("SELECT * FROM letters_jobs") == []


async def test_a_whole_run_waits_for_a_letters_job_under_way(
    settings: Settings, log: Log, pg: asyncpg.Pool, db: str
) -> None:
    """A plain `backfill snapshotter` beside a letters job (found by a reviewer) moved the
    `snapshotter` group's position on the job's partition past the one the job folds up to,
    folding the job's letter into rows being rebuilt: the versions saved meanwhile were stored
    wrong (verify: state vector differs). Whole runs and letters runs now take turns."""
    topic = settings.topic(Topic.LETTERS)
    s = LetterScript("L-whole")
    await append(log, topic, [s.created(), s.comment("ann", "t1", "c1", "first")])
    await snapshot_all(settings, log)
    job, go = await held_job(settings, log, pg, ["L-whole"])
    # Meanwhile the letter goes on: a version and a reply the whole run would fold at once.
    await append(log, topic, [s.paragraph("ann", "Dear Sir,"), s.save("ann", "v1")])
    await append(log, topic, [s.reply("bob", "t1", "c2", "second")])
    other_pg, out = await pool(db), io.StringIO()
    whole = asyncio.create_task(
        backfill(Sources(settings, log, pg=other_pg), "snapshotter", meter=Meter(out))
    )
    try:
        await eventually(lambda: "waiting for" in out.getvalue(), timeout=30)
        assert not whole.done()
        go.set()
        await asyncio.wait_for(job, 30)
        await asyncio.wait_for(whole, 30)
    finally:
        go.set()
        for task in (job, whole):
            task.cancel()
        await asyncio.gather(job, whole, return_exceptions=True)
        await other_pg.close()
    assert await marked(pg) == []
    await agrees(Sources(settings, log, pg=pg), ["L-whole"])


async def test_a_whole_run_after_an_interrupted_job_finishes_it_first(
    settings: Settings, log: Log, pg: asyncpg.Pool
) -> None:
    """A plain `backfill snapshotter` after a letters job was killed (found by a reviewer)
    folded the letter's new records onto its part-rebuilt rows and moved the service's position:
    the finishing job then left the versions saved meanwhile numbered wrong (verify: 14
    mismatches; only a reset mended it). A whole run now finishes interrupted jobs first."""
    topic, s = settings.topic(Topic.LETTERS), LetterScript("L-after")
    await append(log, topic, [s.created(), s.comment("ann", "t1", "c1", "first")])
    await append(log, topic, [s.paragraph("ann", "Dear Sir,"), s.save("ann", "v1")])
    await snapshot_all(settings, log)
    src = Sources(settings, log, pg=pg)
    await interrupted(src, ["L-after"])
    await append(log, topic, [s.reply("bob", "t1", "c2", "second"), s.save("bob", "v2")])
    out = io.StringIO()
    await backfill(src, "snapshotter", meter=Meter(out=out))
    job = backfill_snapshotter.letters_group(["L-after"])
    assert f"{FINISHING} ({job}" in out.getvalue(), out.getvalue()
    assert await marked(pg) == []
    await agrees(src, ["L-after"])


async def test_a_whole_run_beside_an_older_versions_job_refuses(
    settings: Settings, log: Log, pg: asyncpg.Pool
) -> None:
    """A job an older version marked recorded no letters: a whole run cannot finish it, and
    folding beside it would spoil its letters' rows, so it refuses in one line."""
    topic, s = settings.topic(Topic.LETTERS), LetterScript("L-older")
    await append(log, topic, [s.created(), s.comment("ann", "t1", "c1", "first")])
    await snapshot_all(settings, log)
    src = Sources(settings, log, pg=pg)
    await interrupted(src, ["L-older"])
    await pg.execute("DELETE FROM letters_jobs")  # as a version before 005 left it
    await append(log, topic, [s.reply("bob", "t1", "c2", "second")])
    before = await positions(pg, topic)
    out = io.StringIO()
    with pytest.raises(BackfillError, match="unfinished --letters/--since job"):
        await backfill(src, "snapshotter", meter=Meter(out=out))
    assert "was begun by an older version" in out.getvalue()
    assert await positions(pg, topic) == before  # nothing folded beside it
    # verify names the one way to finish it (any run finishes a job that recorded its letters).
    [line] = await verify.unfinished(src)
    assert "command again with the same letters" in line, line
