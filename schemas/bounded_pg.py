"""A PostgreSQL pool whose every read gives up within a few seconds, as an outage does.

A server that hangs (a frozen host, a black-holed route) is worse than one that refuses: with
no bound a read waits for ever, and asyncio's own timeout does not help, since asyncpg cleans
up a cancelled query by asking the frozen server to cancel it and waits for the answer (the
pool's release does too). So each acquire and each query has a bound, and a connection caught
in one is terminated, not handed back to hang its next user. After a read timed out, reads fail
at once for `HOLD_S`: a frozen server costs one timeout, not one per read (a cold letter's load
makes three). Readers treat `PostgresNotAnswering` (an OSError, as a refused connection is)
like any outage: the gateway's PostgreSQL is a shortcut, the log is the truth.
"""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from schemas import pg_quiet

READ_TIMEOUT_S = 3.0  # acquiring (connecting included), then each query
HOLD_S = 3.0  # after a read timed out, later reads fail at once this long


class PostgresNotAnswering(TimeoutError):
    """PostgreSQL did not answer within the bound (or did not lately)."""


class BoundedPool:
    """What the gateway and its auditor routes call of an asyncpg pool, each call bounded."""

    def __init__(
        self, pool: asyncpg.Pool, timeout_s: float = READ_TIMEOUT_S, hold_s: float = HOLD_S
    ) -> None:
        self._pool = pool
        self._timeout_s, self._hold_s = timeout_s, hold_s
        self._held_until = 0.0

    @contextlib.asynccontextmanager
    async def acquire(self, held: bool = True) -> AsyncIterator[Any]:
        """A connection whose queries time out (the pool's `command_timeout`); one that timed
        out, or whose query was cancelled, is terminated instead of going back to the pool.
        `held`: refused at once while a recent timeout holds reads off."""
        if held and time.monotonic() < self._held_until:
            raise PostgresNotAnswering("PostgreSQL did not answer lately")
        busy = self._pool.get_size() >= self._pool.get_max_size() and not self._pool.get_idle_size()
        try:
            conn = await self._pool.acquire(timeout=self._timeout_s)
        except TimeoutError:
            if busy:  # waited for a connection others were using: load, not a frozen server
                raise PostgresNotAnswering("no PostgreSQL connection free in time") from None
            raise self._not_answering() from None
        try:
            yield conn
        except TimeoutError:
            conn.terminate()
            raise self._not_answering() from None
        except asyncio.CancelledError:
            # Its cancellation waits for the server (the cancel request, then a reset).
            conn.terminate()
            raise
        finally:
            await self._pool.release(conn, timeout=self._timeout_s)

    def _not_answering(self) -> PostgresNotAnswering:
        self._held_until = time.monotonic() + self._hold_s
        return PostgresNotAnswering(f"PostgreSQL did not answer within {self._timeout_s:g} s")

    async def fetch(self, query: str, *args: object) -> list[asyncpg.Record]:
        async with self.acquire() as conn:
            rows: list[asyncpg.Record] = await conn.fetch(query, *args, timeout=self._timeout_s)
            return rows

    async def fetchrow(self, query: str, *args: object) -> asyncpg.Record | None:
        async with self.acquire() as conn:
            row: asyncpg.Record | None = await conn.fetchrow(query, *args, timeout=self._timeout_s)
            return row

    async def fetchval(self, query: str, *args: object) -> Any:
        async with self.acquire() as conn:
            return await conn.fetchval(query, *args, timeout=self._timeout_s)

    async def ping(self) -> None:
        """`SELECT 1`, bounded, even while reads are held off (/readyz asks the server itself:
        a lock on one table must not keep every instance unready); an answer ends the hold."""
        async with self.acquire(held=False) as conn:
            await conn.fetchval("SELECT 1", timeout=self._timeout_s)
        self._held_until = 0.0

    async def close(self) -> None:
        await pg_quiet.forget(self._pool)
        # Cancelled by the timeout, asyncpg's close terminates the connections instead.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._pool.close(), self._timeout_s)


async def bounded_pool(
    url: str,
    connect_timeout_s: float,
    max_size: int,
    *,
    min_size: int = 1,
    timeout_s: float = READ_TIMEOUT_S,
    hold_s: float = HOLD_S,
) -> BoundedPool:
    """A pool of `url` (its first connection made within `connect_timeout_s`; with `min_size`
    0, at the first read) whose reads each give up after `timeout_s` (and, after one did, at
    once for `hold_s`). An outage is logged in two lines (schemas/pg_quiet.py)."""
    pool = await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        timeout=connect_timeout_s,
        command_timeout=timeout_s,  # also bounds what callers run on `acquire()`
    )
    return BoundedPool(pg_quiet.watch(pool, url), timeout_s, hold_s)
