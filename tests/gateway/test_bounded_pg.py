"""The gateway's bounded PostgreSQL pool (schemas/bounded_pg.py) against a live server: only a
server that does not answer holds reads off; a busy pool or one slow query does not keep the
readiness probe, or readers after it, from a server that answers."""

import asyncio

import asyncpg
import pytest

from schemas.bounded_pg import BoundedPool, PostgresNotAnswering, bounded_pool
from tests.support import eventually

TIMEOUT_S = 1.0


async def _sleeping(dsn: str, n: int) -> bool:
    conn = await asyncpg.connect(dsn)
    try:
        running = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(0.7)'"
            " AND state = 'active'"
        )
        return bool(running == n)
    finally:
        await conn.close()


async def _pool(dsn: str) -> BoundedPool:
    return await bounded_pool(dsn, 5, max_size=2, timeout_s=TIMEOUT_S)


async def test_waiting_for_a_busy_pool_is_not_a_frozen_server(pg_database: str) -> None:
    pool = await _pool(pg_database)
    try:
        # Both connections busy, then both again for the reads queued next (each within the
        # bound): a read queued after them gives up waiting for one, but PostgreSQL answers, so
        # the next read is not refused at once.
        slow = [asyncio.ensure_future(pool.fetchval("SELECT pg_sleep(0.7)")) for _ in range(4)]
        await eventually(lambda: _sleeping(pg_database, 2))  # the first two run, two wait
        with pytest.raises(PostgresNotAnswering, match="no PostgreSQL connection free"):
            async with pool.acquire():
                pass
        await asyncio.gather(*slow)
        assert await pool.fetchval("SELECT 1") == 1
    finally:
        await pool.close()


async def test_the_probe_asks_past_the_hold_and_ends_it(pg_database: str) -> None:
    pool = await _pool(pg_database)
    holder = await asyncpg.connect(pg_database)
    try:
        await pool.fetchval("SELECT 1")
        await holder.execute("CREATE TABLE t (x int)")
        lock = holder.transaction()
        await lock.start()
        await holder.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")  # a VACUUM FULL, say
        with pytest.raises(PostgresNotAnswering):
            await pool.fetchval("SELECT count(*) FROM t")  # waits on the lock past the bound
        await lock.rollback()
        with pytest.raises(PostgresNotAnswering, match="lately"):  # held off: the server's fault?
            await pool.fetchval("SELECT 1")
        await pool.ping()  # the readiness probe: the server answers, so it is not held off
        assert await pool.fetchval("SELECT count(*) FROM t") == 0
    finally:
        await holder.close()
        await pool.close()
