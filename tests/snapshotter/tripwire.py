"""Cancelling a snapshotter at an exact await point of its commits, reproducibly: `Store`'s
transactions run on connections of a `TrippedPool`, which counts each SQL statement (before it
is sent and after it returned) and the transaction's COMMIT; at the armed count it cancels the
snapshotter's task (as a crash would stop it) and waits there to be cancelled in turn, so the
transaction rolls back, or, after the COMMIT, stays committed without the caller knowing.

Commits are strictly sequential (each starts after the previous one ended), so the count names
the same point in every run of a seed; reads outside transactions (`pool.fetch`) are not
counted: they run beside a commit in flight, in an order timing decides.
"""

import asyncio
import contextvars
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

import asyncpg

from snapshotter.consumer import Snapshotter
from snapshotter.fold import StateRow

# Set while a commit that leaves its partition's position as it is runs (`_save_states`).
SAVE_ONLY: contextvars.ContextVar[bool] = contextvars.ContextVar("save_only", default=False)


class Tripwire:
    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None  # the snapshotter's `run`
        self.left: int | None = None  # points still to pass before the trip
        self.only_saves = False  # count only points of save-only commits
        self.trips: Counter[str] = Counter()  # where it tripped

    def arm(self, points: int, *, only_saves: bool = False) -> None:
        self.left, self.only_saves = points, only_saves

    async def point(self, where: str) -> None:
        if self.left is None or (self.only_saves and not SAVE_ONLY.get()):
            return
        self.left -= 1
        if self.left > 0:
            return
        self.left = None
        kind = "save-only" if SAVE_ONLY.get() else "batch"
        in_commit_task = (task := asyncio.current_task()) is not None and task is not self.task
        self.trips[f"{kind} commit{' task' if in_commit_task else ''}, {where}"] += 1
        assert self.task is not None
        self.task.cancel()
        await asyncio.Event().wait()  # cancelled in turn, by `run`'s way out if not with it


class _Transaction:
    def __init__(self, inner: Any, wire: Tripwire) -> None:
        self.inner, self.wire = inner, wire

    async def __aenter__(self) -> None:
        await self.inner.__aenter__()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.inner.__aexit__(kind, exc, tb)
        if kind is None:
            await self.wire.point("after COMMIT")


class _Connection:
    """A pooled connection whose statements are trip points (what `store` calls on it)."""

    def __init__(self, inner: Any, wire: Tripwire) -> None:
        self.inner, self.wire = inner, wire

    def transaction(self) -> _Transaction:
        return _Transaction(self.inner.transaction(), self.wire)

    async def _statement(self, verb: str, method: str, *args: Any, **kw: Any) -> Any:
        await self.wire.point(f"before {verb}")
        result = await getattr(self.inner, method)(*args, **kw)
        await self.wire.point(f"after {verb}")
        return result

    async def execute(self, sql: str, *args: Any) -> Any:
        return await self._statement(sql.split()[0], "execute", sql, *args)

    async def executemany(self, sql: str, args: Sequence[Any]) -> Any:
        return await self._statement(sql.split()[0], "executemany", sql, args)

    async def fetch(self, sql: str, *args: Any) -> Any:
        return await self._statement(sql.split()[0], "fetch", sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self._statement(sql.split()[0], "fetchval", sql, *args)

    async def copy_records_to_table(self, table: str, **kw: Any) -> Any:
        return await self._statement("COPY", "copy_records_to_table", table, **kw)


class TrippedPool:
    """An asyncpg pool whose acquired connections pass through `wire`."""

    def __init__(self, inner: asyncpg.Pool, wire: Tripwire) -> None:
        self.inner, self.wire = inner, wire

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[_Connection]:
        async with self.inner.acquire() as conn:
            yield _Connection(conn, self.wire)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class ObservedSnapshotter(Snapshotter):
    """Marks its save-only commits (for `Tripwire.only_saves`) and counts those made for
    letters of other partitions evicted with a batch's commit."""

    elsewhere = 0

    async def _save_states(self, partition: int, committed: int, rows: list[StateRow]) -> None:
        if (task := asyncio.current_task()) is not None and task.get_name() == "snapshotter-commit":
            self.elsewhere += 1
        token = SAVE_ONLY.set(True)
        try:
            await super()._save_states(partition, committed, rows)
        finally:
            SAVE_ONLY.reset(token)
