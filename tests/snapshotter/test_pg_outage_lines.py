"""A PostgreSQL outage in a few log lines (schemas/pg_quiet.py): stopped under a running
snapshotter and a gateway's pool, then started again, it is one WARNING when it goes, one when
it is back, and one snapshotter restart line, not asyncpg's traceback per floor retry and a
restart line every 10 s; both recover."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from eventlog.factory import open_log
from schemas.bounded_pg import bounded_pool
from schemas.settings import Settings
from snapshotter.service import serve
from steno_collab import embedded
from tests.snapshotter.conftest import LETTERS
from tests.snapshotter.positions import committed
from tests.snapshotter.scripts import LetterScript, append
from tests.support import eventually, own_postgres

pytestmark = pytest.mark.timeout(120)


@asynccontextmanager
async def stopped(
    pg: embedded.EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[None]:
    """PostgreSQL stopped (connections refused) for the block, then started at its old port."""
    port = pg.port
    await pg.stop()
    yield
    monkeypatch.setattr(embedded, "free_port", lambda: port)
    await pg.start()


def said(caplog: pytest.LogCaptureFixture, text: str, level: int = logging.WARNING) -> int:
    return sum(1 for r in caplog.records if r.levelno == level and text in r.getMessage())


async def test_an_outage_is_two_lines_and_both_recover(
    service_tmp: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="schemas.pg_quiet")
    caplog.set_level(logging.DEBUG, logger="snapshotter.service")
    pg = await own_postgres(service_tmp / "pg")
    dsn = pg.dsn()
    where = f"127.0.0.1:{pg.port}"
    settings = Settings(data_dir=service_tmp / "steno", database_url=dsn, partitions=1)
    log = open_log(settings)
    await log.start()
    task = asyncio.create_task(serve(settings, log))
    gateway = await bounded_pool(dsn, 5.0, max_size=2)  # the gateway's, as `connect_stores`
    try:
        await append(log, LETTERS, [LetterScript("L0").created()])
        await eventually(lambda: committed(dsn), timeout=30)
        caplog.clear()

        async with stopped(pg, monkeypatch):
            await append(log, LETTERS, [LetterScript("L1").created()])
            # Long enough for asyncpg's floor retries at +0, 1, 3 and 7 s in each pool, and the
            # snapshotter's restarts (0.5, 1, 2, 4 s apart): about 8 s.
            await eventually(lambda: said(caplog, "unreachable since"), timeout=15)
            await eventually(lambda: said(caplog, "floor not restored", logging.DEBUG) >= 8, 20)
            await eventually(lambda: said(caplog, "restarting from", logging.DEBUG) >= 3, 20)
            assert not task.done(), f"the service ended: {task.exception()!r}"

        await eventually(lambda: said(caplog, "reachable again"), timeout=15)

        async def resumed() -> bool:  # L1, appended in the outage, folded
            return task.done() or await committed(dsn) == 2

        await eventually(resumed, timeout=30)
        assert not task.done(), f"the service ended: {task.exception()!r}"
        assert await eventually(lambda: gateway.fetchval("SELECT 1"), timeout=10) == 1
        await eventually(lambda: said(caplog, "snapshotter working again", logging.INFO), 5)

        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert "Traceback" not in caplog.text
        assert not [r for r in warnings if r.exc_info or r.name.startswith("asyncpg")]
        assert said(caplog, f"PostgreSQL {where} unreachable since") == 1
        assert said(caplog, f"PostgreSQL {where} reachable again after") == 1
        assert said(caplog, "snapshotter restarting from stored positions") == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await gateway.close()
        await log.close()
        await pg.stop()
