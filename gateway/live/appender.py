"""A per-letter FIFO of entries for one topic, appended in order by one task.

Whatever is queued while an append is in flight goes out in the next append, so the log's
order is the order the gateway accepted updates and a busy letter costs one append per batch.
"""

import asyncio
import time
from collections.abc import Callable, Sequence

from eventlog.records import Entry, Log
from gateway.metrics import Metrics

Done = Callable[[], None]
MAX_BATCH = 500


class Appender:
    def __init__(
        self,
        log: Log,
        topic: str,
        key: bytes,
        metrics: Metrics,
        timeout_s: float,
        on_failure: Callable[[BaseException, Sequence[Entry]], None],
    ) -> None:
        self._log, self._topic, self._key = log, topic, key
        self._metrics, self._timeout_s, self._on_failure = metrics, timeout_s, on_failure
        self._queue: list[tuple[Entry, Done | None]] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self.failed = False

    def put(self, entry: Entry, done: Done | None = None) -> None:
        """Queue `entry`; `done` runs once it is durable (never, if the append fails: then
        `on_failure` gets the exception and every entry not known to be appended, in order)."""
        if self.failed:
            return
        self._queue.append((entry, done))
        self._idle.clear()
        self._wake.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"append:{self._key.decode()}")

    async def flush(self) -> None:
        """Wait until everything queued so far is appended (or the appender failed)."""
        await self._idle.wait()

    async def close(self) -> None:
        await self.flush()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue and not self.failed:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                await self._append(batch)
            self._idle.set()

    async def _append(self, batch: list[tuple[Entry, Done | None]]) -> None:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._log.append(self._topic, self._key, [entry for entry, _ in batch])
        except Exception as exc:  # LogUnavailableError, LogClosedError, timeout: all fatal here
            self.failed = True
            unlogged = [entry for entry, _ in batch] + [entry for entry, _ in self._queue]
            self._queue.clear()
            self._on_failure(exc, unlogged)
            return
        self._metrics.appended(self._topic, time.perf_counter() - started)
        for _, done in batch:
            if done is not None:
                done()
