"""`backfill snapshotter` while the snapshotter service runs (README "Rebuilding and auditing"):
a reset rebuild pauses the service, which then follows from the rebuilt positions, with every
letter rebuilt whole; a plain backfill and the service fold side by side, each going on from
what the other committed; a deadlock is retried, never the end of the service (`dev`)."""

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from eventlog import Log
from schemas.events import Topic
from schemas.settings import Settings
from snapshotter import service
from snapshotter.service import retryable, serve
from tests.snapshotter.scripts import LetterScript, append
from tests.support import eventually
from tests.tools.letters_jobs import position
from tests.tools.snapshots import snapshot_all
from tools import backfill_snapshotter
from tools.progress import Meter
from tools.sources import Sources


@pytest.fixture
def log_kind() -> str:
    return "embedded"  # the service and the tool share the log code whatever the log


@pytest_asyncio.fixture(loop_scope="session")
async def pg(db: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(db, min_size=1, max_size=4)
    yield pool
    await pool.close()


async def rows(pg: asyncpg.Pool) -> tuple[Any, ...]:
    """What the auditors read of the letter: its row, the audit trail's positions."""
    letters = await pg.fetchval("SELECT count(*) FROM letters")
    audit = await pg.fetch("SELECT log_offset FROM collaboration ORDER BY log_offset")
    return letters, [r["log_offset"] for r in audit]


async def test_a_reset_rebuild_pauses_the_service_and_rebuilds_every_record(
    settings: Settings,
    log: Log,
    pg: asyncpg.Pool,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(service, "REBUILD_POLL_S", 0.05)
    monkeypatch.setattr(service, "BACKOFF_S", (0.05, 0.05))
    caplog.set_level(logging.INFO, logger="snapshotter.service")
    topic = settings.topic(Topic.LETTERS)
    letter = LetterScript("L-rebuilt")
    task = asyncio.create_task(serve(settings, log))
    try:
        await append(log, topic, [letter.created(), letter.joined("ann", "c1")])
        await eventually(lambda: task.done() or _committed(pg, topic, 2), timeout=30)
        before = await rows(pg)

        assert await backfill_snapshotter.reset(pg)
        # The service's next batch, folded from its positions of before the reset.
        await append(log, topic, [letter.joined("bob", "c2")])
        paused = "snapshotter paused"
        await eventually(lambda: task.done() or paused in caplog.text or position(pg, topic))
        assert not task.done(), f"the service ended: {task.exception()!r}"
        assert await position(pg, topic) is None  # its stale position was not stored again
        assert paused in caplog.text

        src = Sources(settings, log, pg=pg)
        assert await backfill_snapshotter.run_all(src, Meter()) == 3
        await append(log, topic, [letter.left("ann", "c1")])
        await eventually(lambda: task.done() or _committed(pg, topic, 4), timeout=30)
        assert not task.done(), f"the service ended: {task.exception()!r}"
        letters, audit = await rows(pg)
        assert letters == 1 and audit[: len(before[1])] == before[1]
        assert audit[-1] == 3 and len(audit) == len(set(audit))
        assert "snapshotter resuming" in caplog.text
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _committed(pg: asyncpg.Pool, topic: str, offset: int) -> bool:
    return await position(pg, topic) == offset


async def test_a_plain_backfill_goes_on_from_what_the_service_committed(
    settings: Settings, log: Log, pg: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = settings.topic(Topic.LETTERS)
    letter = LetterScript("L-shared")
    await append(log, topic, [letter.created(), letter.joined("ann", "c1")])
    reads = 0
    read = log.read

    async def service_first(*args: Any, **kw: Any) -> Any:
        nonlocal reads
        reads += 1
        if reads == 1:  # the service commits the whole log under the backfill's feet
            monkeypatch.setattr(log, "read", read)
            await snapshot_all(settings, log)
        return await read(*args, **kw)

    monkeypatch.setattr(log, "read", service_first)
    src = Sources(settings, log, pg=pg)
    await backfill_snapshotter.run_all(src, Meter())
    assert reads == 1 and await position(pg, topic) == 2
    letters, audit = await rows(pg)
    assert letters == 1 and len(audit) == len(set(audit)) == 2


def test_a_deadlock_is_retried() -> None:
    """The service a reset rebuild deadlocked with used to end, and `dev` with it (1001 to
    every editor); the transaction was rolled back, and the next try may pass."""
    assert retryable(asyncpg.DeadlockDetectedError("deadlock detected"))
    assert retryable(asyncpg.SerializationError("could not serialize access"))
