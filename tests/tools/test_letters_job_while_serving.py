"""`backfill snapshotter --letters` while the snapshotter service runs (README "Rebuilding and
auditing"): the service pauses while the job is marked, the job folds up to where the service
was, and the service then goes on from there, so what it folds meanwhile is not lost. An
interrupted job keeps it paused, and says so, as an interrupted reset rebuild does."""

import asyncio
import logging

import asyncpg
import pytest

from eventlog import Log
from schemas.events import Topic
from schemas.settings import Settings
from snapshotter.consumer import GROUP
from snapshotter.store import Store
from tests.snapshotter.scripts import LetterScript, append
from tests.support import eventually
from tests.tools.letters_jobs import LETTER, PAUSED, SteppedLog, at, commented, position, thread
from tests.tools.snapshots import snapshot_all
from tools import backfill_snapshotter
from tools.progress import Meter
from tools.sources import Sources


@pytest.fixture
def log_kind() -> str:
    return "embedded"  # the service and the job share the log code whatever the log


async def test_what_the_service_folds_during_a_letters_job_is_kept(
    settings: Settings,
    log: Log,
    pg: asyncpg.Pool,
    serving: asyncio.Task[None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    topic, s = await commented(settings, log, pg, serving)

    async def reply_and_resolve() -> None:
        # Logged while the job is under way; the service folds them, or pauses first.
        await append(log, topic, [s.reply("bob", "t1", "c2", "second"), s.resolve("ann", "t1")])
        await eventually(lambda: PAUSED in caplog.text or at(pg, topic, 4, serving), timeout=30)

    src = Sources(settings, SteppedLog(log, "read", reply_and_resolve), pg=pg)
    done, waiting = await backfill_snapshotter.run_letters(src, [LETTER], Meter())
    assert (done, waiting) == (2, [])  # up to where the service was when the job began
    await append(log, topic, [s.joined("carol", "tab-1")])
    await eventually(lambda: at(pg, topic, 5, serving), timeout=30)
    assert await thread(pg) == ("resolved", ["c1", "c2"])
    assert PAUSED in caplog.text and "snapshotter resuming" in caplog.text
    # The refused commit is the pause, not a failure to restart from (it was said as one).
    assert "restarting from stored positions" not in caplog.text
    assert "is rebuilding letters" in caplog.text and "was interrupted" not in caplog.text


async def test_what_the_service_commits_as_a_letters_job_begins_is_rebuilt(
    settings: Settings,
    log: Log,
    pg: asyncpg.Pool,
    serving: asyncio.Task[None],
) -> None:
    """The job reads where the service is once it is marked: a commit made just before is
    folded by the job too (its rows were deleted with the letter's; the job used to read the
    position first, and fold only up to there)."""
    topic, s = await commented(settings, log, pg, serving)

    async def reply() -> None:
        await append(log, topic, [s.reply("bob", "t1", "c2", "second")])
        await eventually(lambda: at(pg, topic, 3, serving), timeout=30)

    src = Sources(settings, SteppedLog(log, "start_offsets", reply), pg=pg)
    assert await backfill_snapshotter.run_letters(src, [LETTER], Meter()) == (3, [])
    await append(log, topic, [s.resolve("ann", "t1")])
    await eventually(lambda: at(pg, topic, 4, serving), timeout=30)
    assert await thread(pg) == ("resolved", ["c1", "c2"])


async def test_an_interrupted_letters_job_keeps_the_service_paused_and_says_so(
    settings: Settings,
    log: Log,
    pg: asyncpg.Pool,
    serving: asyncio.Task[None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    topic, s = await commented(settings, log, pg, serving)

    started = asyncio.Event()

    async def stuck() -> None:
        started.set()
        await asyncio.Event().wait()

    src = Sources(settings, SteppedLog(log, "read", stuck), pg=pg)
    job = asyncio.create_task(backfill_snapshotter.run_letters(src, [LETTER], Meter()))
    await asyncio.wait_for(started.wait(), 30)
    job.cancel()  # Ctrl-C: its rows deleted, its marker left
    await asyncio.gather(job, return_exceptions=True)
    await append(log, topic, [s.reply("bob", "t1", "c2", "second")])
    said = await eventually(
        lambda: [r for r in caplog.records if r.getMessage().startswith(PAUSED)], timeout=30
    )
    assert said[0].levelno == logging.WARNING
    group = backfill_snapshotter.letters_group([LETTER])
    message = said[0].getMessage()
    assert f"backfill snapshotter --letters/--since job ({group} on partitions [0])" in message
    # Told from a job under way (the backfills' lock held): nobody holds it any more.
    assert "was interrupted: run any backfill snapshotter (it finishes this one first)" in message
    assert await position(pg, topic) == 2 and not serving.done()

    # Run again, it ends, and the service goes on from where it paused.
    await backfill_snapshotter.run_letters(Sources(settings, log, pg=pg), [LETTER], Meter())
    await eventually(lambda: at(pg, topic, 3, serving), timeout=30)
    assert await thread(pg) == ("open", ["c1", "c2"])
    assert "snapshotter resuming" in caplog.text


async def test_a_reset_rebuild_supersedes_an_interrupted_letters_job(
    settings: Settings, log: Log, pg: asyncpg.Pool
) -> None:
    """Its marker would otherwise pause the service after the reset (a --since job run again
    later may choose other letters: another job)."""
    topic, s = settings.topic(Topic.LETTERS), LetterScript(LETTER)
    await append(log, topic, [s.created(), s.comment("ann", "t1", "c1", "first")])
    await snapshot_all(settings, log)
    store = Store(pg)
    job = backfill_snapshotter.letters_group([LETTER])

    async def killed() -> None:
        raise asyncpg.PostgresConnectionError("PostgreSQL went away")

    src = Sources(settings, SteppedLog(log, "read", killed), pg=pg)
    with pytest.raises(asyncpg.PostgresConnectionError):
        await backfill_snapshotter.run_letters(src, [LETTER], Meter())
    assert await store.letters_jobs(topic, [0]) == {job: [0]}
    assert await backfill_snapshotter.reset(pg)
    assert await store.letters_jobs(topic, [0]) == {}


async def test_a_letters_job_waits_for_a_commit_in_flight(
    settings: Settings, log: Log, pg: asyncpg.Pool, db: str
) -> None:
    """A service's commit begun before the job marks itself: its rows of the letter are
    deleted with the others (they used to stay, beside the job's copies)."""
    topic, s = settings.topic(Topic.LETTERS), LetterScript(LETTER)
    await append(log, topic, [s.created()])
    await snapshot_all(settings, log)
    conn = await asyncpg.connect(db)
    try:
        tx = conn.transaction()  # the service's commit: its position row first, then the rows
        await tx.start()
        await conn.execute(
            "UPDATE consumer_positions SET next_offset = 1 WHERE consumer_group = $1", GROUP
        )
        await conn.execute(
            "INSERT INTO collaboration (id, letter_id, user_id, change_type, change_data,"
            " timestamp, log_topic, log_partition, log_offset)"
            " VALUES (gen_random_uuid(), $1, 'ann', 'edit', '{}', now(), $2, 0, 7)",
            LETTER,
            topic,
        )
        group = backfill_snapshotter.letters_group([LETTER])
        src = Sources(settings, log, pg=pg)
        start = backfill_snapshotter._start_letters(src, Store(pg), group, [LETTER], [0])
        starting = asyncio.create_task(start)

        async def blocked() -> bool:
            waiting = await pg.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND datname = current_database()"
            )
            return bool(waiting)

        await eventually(blocked)  # the job waits for the commit
        await tx.commit()
        assert await asyncio.wait_for(starting, 10) == {0: 0}
    finally:
        await conn.close()
    assert await pg.fetchval("SELECT count(*) FROM collaboration WHERE letter_id = $1", LETTER) == 0
