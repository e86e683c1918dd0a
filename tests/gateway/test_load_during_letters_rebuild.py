"""While `backfill snapshotter --letters` (or `--from-beginning --reset`) rebuilds a letter's
PostgreSQL rows, a gateway that loads it cold (no Redis) still loads it whole and finds its
firm: its rows are gone but the rebuild's own consumer group marks where the tables stop
covering its partition."""

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest_asyncio

from eventlog import Log
from gateway.access import Access, LetterMeta
from gateway.live.loader import load, writes
from schemas.settings import Settings
from snapshotter.migrate import migrate
from snapshotter.store import Store
from tests.support import started_log
from tests.tools.scripted import LETTER
from tests.tools.snapshots import snapshotted
from tools.backfill import backfill
from tools.backfill_snapshotter import _start_letters, letters_group, reset
from tools.progress import Meter
from tools.sources import open_sources


@pytest_asyncio.fixture(loop_scope="session")
async def settings(tmp_path: Path, pg_database: str) -> Settings:
    await migrate(pg_database)
    # One partition: the letter's records follow others', as in a partition of many letters.
    return Settings(data_dir=tmp_path / "steno", partitions=1, database_url=pg_database,
                    autosave_updates=15)  # fmt: skip


@pytest_asyncio.fixture(loop_scope="session")
async def log(settings: Settings) -> AsyncIterator[Log]:
    async with started_log(settings) as the_log:
        yield the_log


@pytest_asyncio.fixture(loop_scope="session")
async def pg(settings: Settings, log: Log) -> AsyncIterator[asyncpg.Pool]:
    async with snapshotted(settings, log) as pool:
        yield pool


async def _as_from_the_log_alone(settings: Settings, log: Log, pg: asyncpg.Pool) -> None:
    """A cold load and an access lookup through PostgreSQL agree with the log read whole."""
    alone = await load(settings, log, LETTER, None, None)
    assert len(alone.state) > 100  # the scripted letter's text, comments' anchors...
    cold = await load(settings, log, LETTER, None, pg)
    assert (cold.state, cold.end) == (alone.state, alone.end)
    wrote = [w async for w in writes(settings, log, LETTER, cold, pg)]
    assert wrote == [w async for w in writes(settings, log, LETTER, alone)]
    assert {user for user, _ in wrote} == {"user-0", "user-1", "user-2"}
    # A fresh gateway's access check (nothing cached): the letter is its firm's, not unknown.
    meta = await Access(settings, log, None, pg).lookup(LETTER)
    assert isinstance(meta, LetterMeta) and meta.firm_id == "firm-a"


async def test_a_letters_rebuild_keeps_its_letters_loadable(
    settings: Settings, log: Log, pg: asyncpg.Pool
) -> None:
    await _as_from_the_log_alone(settings, log, pg)
    async with open_sources(settings, pg=True) as src:
        # Where the job stands right after its start (or interrupted then): rows deleted, its
        # group at the partition's start, the snapshotter's group past all of the letter.
        await _start_letters(src, Store(src.pg), letters_group([LETTER]), [LETTER], [0])
        assert await pg.fetchval("SELECT count(*) FROM letters") == 0
        await _as_from_the_log_alone(settings, log, pg)
        await backfill(src, "snapshotter", letters=[LETTER], meter=Meter(every_s=3600))
    assert await pg.fetchval("SELECT count(*) FROM letter_version") == 2
    await _as_from_the_log_alone(settings, log, pg)


async def test_a_reset_rebuild_keeps_letters_loadable(
    settings: Settings, log: Log, pg: asyncpg.Pool
) -> None:
    assert await reset(pg)  # tables and the snapshotter's positions gone, nothing folded yet
    await _as_from_the_log_alone(settings, log, pg)
    async with open_sources(settings, pg=True) as src:
        await backfill(src, "snapshotter", reset=True, meter=Meter(every_s=3600))
    await _as_from_the_log_alone(settings, log, pg)
