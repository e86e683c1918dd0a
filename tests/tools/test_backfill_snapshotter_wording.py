"""What `backfill snapshotter` and the service it pauses say (README "Rebuilding and auditing"):
the pause names each letters job as it stands (rebuilt by the run that began it, interrupted,
about to be finished by the run under way, being finished by a later run: the backfills' lock
alone called a job a whole run was finishing "rebuilding"), a run that finishes a job first
labels the two meters apart, and a run that waited for another says its wait apart from its
own time."""

import asyncio
import io
import re
import time
from collections.abc import Callable

import asyncpg
import pytest
import pytest_asyncio

from eventlog import Log
from schemas.events import Topic
from schemas.rebuilds import SNAPSHOTTER_LOCK
from schemas.settings import Settings
from tests.snapshotter.scripts import LetterScript, append
from tests.support import eventually
from tests.tools.conftest import pool
from tests.tools.letters_jobs import (
    LETTER,
    PAUSED,
    SteppedLog,
    agrees,
    at,
    commented,
    held_job,
    interrupted,
    marked,
    thread,
)
from tests.tools.snapshots import snapshot_all
from tools import backfill_snapshotter
from tools.backfill import Summary, backfill
from tools.progress import Meter
from tools.sources import Sources

JOB = "a backfill snapshotter --letters/--since job"


@pytest_asyncio.fixture(loop_scope="session")
async def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(snapshotter_batch=1)  # a meter line per record folded


async def said(caplog: pytest.LogCaptureFixture, wording: str) -> str:
    """The pause's WARNING saying `wording` (awaited)."""

    def found() -> str | None:
        paused = (r.getMessage() for r in caplog.records if r.getMessage().startswith(PAUSED))
        return next((m for m in paused if wording in m), None)

    return await eventually(found, timeout=30)


async def test_the_pause_says_what_each_letters_job_is_doing(
    settings: Settings,
    log: Log,
    pg: asyncpg.Pool,
    db: str,
    serving: asyncio.Task[None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    topic, s = await commented(settings, log, pg, serving)
    group = backfill_snapshotter.letters_group([LETTER])
    named = f"{JOB} ({group} on partitions [0])"

    # Under way, by the run that began it.
    job, go = await held_job(settings, log, pg, [LETTER])
    await append(log, topic, [s.reply("bob", "t1", "c2", "second")])  # its commit refused
    await said(caplog, f"{named} is rebuilding letters up to this snapshotter's positions")
    go.set()
    await asyncio.wait_for(job, 30)
    await eventually(lambda: at(pg, topic, 3, serving), timeout=30)

    # Interrupted, nobody running.
    src = Sources(settings, log, pg=pg)
    await interrupted(src, [LETTER])
    await append(log, topic, [s.resolve("ann", "t1"), s.joined("carol", "tab-1")])
    await said(caplog, f"{named} was interrupted: run any backfill snapshotter (it finishes")

    # Another run holds the backfills' lock and has not reached the job yet: it is no more
    # "rebuilding" than before.
    other_pg = await pool(db)
    try:
        async with other_pg.acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock($1)", SNAPSHOTTER_LOCK)
            await said(caplog, f"{named} was interrupted: the backfill snapshotter run under way")
            await conn.execute("SELECT pg_advisory_unlock($1)", SNAPSHOTTER_LOCK)
        await said(caplog, f"{named} was interrupted: run any backfill snapshotter (it finishes")

        # A later, whole run finishing it (held at its first read of the job's records).
        started, go = asyncio.Event(), asyncio.Event()

        async def held() -> None:
            started.set()
            await go.wait()

        stepped = Sources(settings, SteppedLog(log, "read", held), pg=other_pg)
        whole = asyncio.create_task(backfill(stepped, "snapshotter", meter=Meter(io.StringIO())))
        try:
            await asyncio.wait_for(started.wait(), 30)
            message = await said(caplog, "is finishing it")
            assert message == (
                f"{PAUSED}: {named} was interrupted, and a later backfill snapshotter run is"
                " finishing it, rebuilding its letters up to this snapshotter's positions; this"
                " snapshotter goes on from its positions once that ends"
            )
            go.set()
            await asyncio.wait_for(whole, 30)
        finally:
            go.set()
            whole.cancel()
            await asyncio.gather(whole, return_exceptions=True)
    finally:
        await other_pg.close()
    await eventually(lambda: at(pg, topic, 5, serving), timeout=30)
    assert await thread(pg) == ("resolved", ["c1", "c2"])
    assert await marked(pg) == []


@pytest.mark.parametrize("letters", [[], ["L-other"]], ids=["whole", "letters"])
async def test_a_run_finishing_a_job_first_labels_the_two_meters_apart(
    settings: Settings, log: Log, pg: asyncpg.Pool, letters: list[str]
) -> None:
    """Both said "snapshotter letters: N events to fold" (a whole run's own: "snapshotter: ...",
    counted on from the job's events, so it began part full)."""
    topic, s, other = settings.topic(Topic.LETTERS), LetterScript(LETTER), LetterScript("L-other")
    await append(log, topic, [s.created(), other.created(), s.comment("ann", "t1", "c1", "first")])
    await snapshot_all(settings, log)
    src = Sources(settings, log, pg=pg)
    await interrupted(src, [LETTER])
    await append(log, topic, [s.reply("bob", "t1", "c2", "second"), s.resolve("ann", "t1")])
    out = io.StringIO()
    await backfill(src, "snapshotter", letters=letters, meter=Meter(out, every_s=0.0))
    group = backfill_snapshotter.letters_group([LETTER])
    lines = out.getvalue().splitlines()
    job = [line for line in lines if line.startswith("snapshotter letters (interrupted job ")]
    assert job[0] == f"snapshotter letters (interrupted job {group}): 3 events to fold", lines
    own = "snapshotter letters (this run): " if letters else "snapshotter (this run): "
    mine = [line for line in lines if line.startswith(own)]
    # The letters run's job reads the partition from its start, up to where the service is.
    assert mine[0] == f"{own}{3 if letters else 2} events to fold", lines
    assert mine[1].startswith(f"{own}1/{3 if letters else 2} events"), lines
    assert len(job) + len(mine) == len(lines) - 1, lines  # and the line naming the job
    await agrees(src, [LETTER, "L-other"])


@pytest.mark.parametrize("letters", [[], [LETTER]], ids=["whole", "letters"])
async def test_a_run_that_waited_for_another_says_its_wait_apart(
    settings: Settings, log: Log, pg: asyncpg.Pool, letters: list[str]
) -> None:
    """Its time and rate were the wait's and the run's together ("N events in 14.1 s", of
    which 12.3 s waiting); a letters run did not say it waited at all."""
    topic, s = settings.topic(Topic.LETTERS), LetterScript(LETTER)
    await append(log, topic, [s.created(), s.comment("ann", "t1", "c1", "first")])
    await snapshot_all(settings, log)
    out = io.StringIO()
    began = time.monotonic()
    async with pg.acquire() as conn:  # another run's
        await conn.execute("SELECT pg_advisory_lock($1)", SNAPSHOTTER_LOCK)
        run = asyncio.create_task(
            backfill(
                Sources(settings, log, pg=pg), "snapshotter", letters=letters, meter=Meter(out)
            )
        )
        try:
            await eventually(lambda: "waiting for that run to end" in out.getvalue(), timeout=30)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", SNAPSHOTTER_LOCK)
    summary = await asyncio.wait_for(run, 30)
    wall = time.monotonic() - began
    line, total = summary.lines
    found = re.fullmatch(
        r"snapshotter: [\d,]+ events in ([\d.]+) s.* \(after waiting ([\d.]+) s for another"
        r" backfill run: not in this time\)",
        line,
    )
    assert found is not None, line
    took, waited = float(found[1]), float(found[2])
    assert took + waited <= wall + 0.1, (line, wall)  # the wait counted once
    assert f"({waited:.1f} s of it waiting for another backfill run" in total, total


def test_the_wall_time_line_says_the_wait_apart_from_the_overhead() -> None:
    now = [1000.0]
    summary = Summary(started=now[0], clock=lambda: now[0])
    summary.add("snapshotter", 10, "events", 2.0, waited=12.3)
    now[0] += 14.8  # nothing else worth a word: 0.5 s
    assert summary.lines == [
        "snapshotter: 10 events in 2.0 s, 5 events/s (after waiting 12.3 s for another backfill"
        " run: not in this time)",
        "in all: 14.8 s wall time (12.3 s of it waiting for another backfill run)",
    ]
    now[0] += 3.0
    assert summary.lines[1] == (
        "in all: 17.8 s wall time (12.3 s of it waiting for another backfill run, 3.5 s outside"
        " the rebuilds: opening and closing the log and stores, checks)"
    )
