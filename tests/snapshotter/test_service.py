"""The snapshotter service outlives its PostgreSQL: shut down (new sessions refused with 57P03,
ours terminated) and started again, it waits, then resumes from the stored positions."""

import asyncio
import logging
from pathlib import Path

import asyncpg
import pytest

from eventlog.factory import open_log
from schemas.settings import Settings
from snapshotter.service import retryable, serve
from tests.snapshotter.conftest import LETTERS
from tests.snapshotter.pg_outage import shut_down, start_again
from tests.snapshotter.positions import committed
from tests.snapshotter.scripts import LetterScript, append
from tests.support import eventually, own_postgres


async def test_service_waits_through_a_postgres_shutdown_and_restart(
    service_tmp: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="snapshotter.service")
    pg = await own_postgres(service_tmp / "pg")
    dsn = pg.dsn()
    settings = Settings(data_dir=service_tmp / "steno", database_url=dsn, partitions=1)
    log = open_log(settings)
    await log.start()
    task = asyncio.create_task(serve(settings, log))
    keeper: asyncpg.Connection | None = None
    try:
        await append(log, LETTERS, [LetterScript("L0").created()])
        await eventually(lambda: committed(dsn), timeout=30)

        keeper = await shut_down(pg, dsn)
        await append(log, LETTERS, [LetterScript("L1").created()])
        await eventually(lambda: task.done() or "CannotConnectNowError" in caplog.text)
        assert not task.done(), f"the service ended: {task.exception()!r}"

        await start_again(pg, keeper, monkeypatch)
        keeper = None

        async def resumed() -> bool:
            return task.done() or await committed(dsn) == 2

        await eventually(resumed, timeout=40, interval=0.2)
        assert not task.done(), f"the service ended: {task.exception()!r}"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if keeper is not None:
            await keeper.close()
        await log.close()
        await pg.stop()


def test_a_connection_left_mid_operation_by_a_restart_is_retried() -> None:
    """Seen once in a PostgreSQL restart under load: the pool's reset of a connection whose
    commit the restart cut raised this on release, and the snapshotter exited (status 1); a
    new connection works, so it retries from its stored positions as for a lost connection.
    Only the bare class: its subclasses (a protocol the client misread) would fail again."""
    cut = asyncpg.InternalClientError("cannot switch to state 15; another operation (2) is in")
    assert retryable(cut)
    assert not retryable(asyncpg.exceptions.ProtocolError("misread"))
