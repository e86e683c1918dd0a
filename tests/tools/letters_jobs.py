"""What the tests of `backfill snapshotter --letters/--since` jobs share: the snapshotter service
beside a job, a log whose first call of a method is held, and the jobs' state in PostgreSQL."""

import asyncio
import io
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from eventlog import Log
from schemas.events import Topic
from schemas.rebuilds import LETTERS_JOBS
from schemas.settings import Settings
from snapshotter.consumer import GROUP
from snapshotter.store import Store
from tests.snapshotter.scripts import LetterScript, append
from tests.support import eventually
from tools import backfill_snapshotter, verify
from tools.progress import Meter
from tools.sources import Sources

LETTER = "L-rebuilt"
PAUSED = "snapshotter paused"


FINISHING = "snapshotter: finishing an interrupted --letters/--since job"


class SteppedLog:
    """The job's log: its first call of `method` awaits `step` first (`read`: the job has
    deleted its letters' rows by then and folded nothing yet; `start_offsets`: the job has not
    marked itself yet); everything else is the log's."""

    def __init__(self, log: Log, method: str, step: Callable[[], Awaitable[None]]) -> None:
        self._log, self._method = log, method
        self._step: Callable[[], Awaitable[None]] | None = step

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._log, name)
        if name != self._method:
            return real

        async def stepped(*args: Any, **kw: Any) -> Any:
            step, self._step = self._step, None
            if step is not None:
                await step()
            return await real(*args, **kw)

        return stepped


async def position(pg: asyncpg.Pool, topic: str) -> int | None:
    value: int | None = await pg.fetchval(
        "SELECT next_offset FROM consumer_positions WHERE consumer_group = $1 AND topic = $2"
        " AND partition = 0",
        GROUP,
        topic,
    )
    return value


async def at(pg: asyncpg.Pool, topic: str, offset: int, task: asyncio.Task[None]) -> bool:
    assert not task.done(), f"the service ended: {task.exception()!r}"
    return await position(pg, topic) == offset


async def thread(pg: asyncpg.Pool) -> tuple[str | None, list[str]]:
    status = await pg.fetchval("SELECT status FROM comment_threads WHERE thread_id = 't1'")
    rows = await pg.fetch("SELECT comment_id FROM comments WHERE thread_id = 't1' ORDER BY 1")
    return status, [r["comment_id"] for r in rows]


async def commented(
    settings: Settings, log: Log, pg: asyncpg.Pool, serving: asyncio.Task[None]
) -> tuple[str, LetterScript]:
    """The letter created with a thread `t1`, folded by the service: its topic and script."""
    topic, s = settings.topic(Topic.LETTERS), LetterScript(LETTER)
    await append(log, topic, [s.created(), s.comment("ann", "t1", "c1", "first")])
    await eventually(lambda: at(pg, topic, 2, serving), timeout=30)
    return topic, s


def letters_apart(log: Log, topic: str) -> tuple[str, str]:
    """Two letter ids on different partitions."""
    first = "L-old"
    apart = (f"L-new-{i}" for i in range(100))
    there = log.partition_for(topic, first.encode())
    return first, next(lid for lid in apart if log.partition_for(topic, lid.encode()) != there)


async def positions(pg: asyncpg.Pool, topic: str) -> dict[int, int]:
    return await Store(pg).positions(GROUP, topic)


async def positions_are(
    pg: asyncpg.Pool, topic: str, wanted: dict[int, int], task: asyncio.Task[None]
) -> bool:
    assert not task.done(), f"the service ended: {task.exception()!r}"
    return await positions(pg, topic) == wanted


async def marked(pg: asyncpg.Pool) -> list[str]:
    """The letters jobs' groups marked (consumer_positions), under way or interrupted."""
    rows = await pg.fetch(
        "SELECT DISTINCT consumer_group FROM consumer_positions"
        " WHERE starts_with(consumer_group, $1) ORDER BY 1",
        LETTERS_JOBS,
    )
    return [r["consumer_group"] for r in rows]


async def killed() -> None:
    raise asyncpg.PostgresConnectionError("PostgreSQL went away")


async def interrupted(src: Sources, letters: list[str]) -> None:
    """A letters job that marked itself (its letters' rows deleted), then stopped."""
    stepped = Sources(src.settings, SteppedLog(src.log, "read", killed), pg=src.pg)
    with pytest.raises(asyncpg.PostgresConnectionError):
        await backfill_snapshotter.run_letters(stepped, letters, Meter(out=io.StringIO()))


async def held_job(
    settings: Settings, log: Log, pg: asyncpg.Pool, letters: list[str]
) -> tuple[asyncio.Task[tuple[int, list[str]]], asyncio.Event]:
    """A letters run held at its first log read (marked, its letters' rows deleted): its task,
    and the event that lets it go on."""
    started, go = asyncio.Event(), asyncio.Event()

    async def held() -> None:
        started.set()
        await go.wait()

    stepped = Sources(settings, SteppedLog(log, "read", held), pg=pg)
    task = asyncio.create_task(backfill_snapshotter.run_letters(stepped, letters, Meter()))
    await asyncio.wait_for(started.wait(), 30)
    return task, go


async def agrees(src: Sources, letters: list[str], finished: bool = True) -> None:
    for lid in letters:
        findings = await verify.verify_letter(src, lid)
        assert all(f.ok for f in findings), [f.line() for f in findings if not f.ok]
    if finished:
        assert await verify.unfinished(src) == []
        assert src.pg is not None
        assert await src.pg.fetch("SELECT * FROM letters_jobs") == []
