"""PostgreSQL going down under a running snapshotter and coming back at the same address
(tests/snapshotter/test_service.py, test_metrics.py)."""

import asyncio
import signal

import asyncpg
import pytest

from steno_collab import embedded
from tests.support import eventually


async def refused(dsn: str) -> bool:
    try:
        await (await asyncpg.connect(dsn, timeout=2)).close()
    except asyncpg.CannotConnectNowError:
        return True
    return False


async def shut_down(pg: embedded.EmbeddedPostgres, dsn: str) -> asyncpg.Connection:
    """A smart shutdown held open: new sessions get "the database system is shutting down"
    (57P03, CannotConnectNowError), the others are terminated. The returned session holds it
    there until `start_again` closes it."""
    keeper = await asyncpg.connect(dsn)
    assert pg._proc is not None
    pg._proc.popen.send_signal(signal.SIGTERM)
    await eventually(lambda: refused(dsn), timeout=10)
    await keeper.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
    )
    return keeper


async def start_again(
    pg: embedded.EmbeddedPostgres, keeper: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last session closed, the shutdown completes; then the server starts at its old port,
    where the snapshotter's pool looks."""
    await keeper.close()
    assert pg._proc is not None
    await asyncio.to_thread(pg._proc.popen.wait)
    port = pg.port
    monkeypatch.setattr(embedded, "free_port", lambda: port)
    await pg.start()
