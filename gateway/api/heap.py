"""Keeping a gateway's long-lived objects out of CPython's full garbage collections.

A full (generation 2) collection walks every tracked object while the event loop stands still.
Each open connection holds about 200 of them (uvicorn's and websockets' protocol objects, our
Connection, their tasks and coroutine frames): at 2,000 connections one collection walked
~390,000 objects in ~250 ms, and under load one ran every 10-15 s, because objects that live a
few milliseconds (appends in flight, queued frames) are promoted and count towards the next.
Those pauses were the p99 of the 2,000-connection bench (docs/performance.md).

`HeapFreezer` moves the survivors of every full collection into the permanent generation
(`gc.freeze`), so the next one walks only what was promoted since. Frozen objects that later
become cyclic garbage (a closed connection's tasks and frames) are not collected while frozen,
so every `refresh_s` everything is unfrozen, collected once and frozen again: that garbage is
bounded by one period's connection churn. Most objects die by reference count, frozen or not.
Only processes that call `tune_interpreter()` run it (gateway/api/server.py), never tests.
"""

import asyncio
import gc
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)
CHECK_S = 1.0
REFRESH_S = 600.0


def full_collections() -> int:
    return int(gc.get_stats()[2]["collections"])


class HeapFreezer:
    def __init__(
        self,
        check_s: float = CHECK_S,
        refresh_s: float = REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.check_s, self.refresh_s, self._clock = check_s, refresh_s, clock
        self._seen = full_collections()
        self._refreshed = clock()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._seen, self._refreshed = full_collections(), self._clock()
        self._task = asyncio.create_task(self._run(), name="heap-freezer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        # Polled from the loop rather than hooked into gc.callbacks: a callback runs inside the
        # collector, in whichever thread allocated (the log's writer thread too).
        while True:
            await asyncio.sleep(self.check_s)
            self.check()

    def check(self) -> None:
        """One look: refresh the heap when its period is over, else freeze what survived a full
        collection since the last look."""
        if self._clock() - self._refreshed >= self.refresh_s:
            started = time.perf_counter()
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            self._refreshed = self._clock()
            log.info(
                "heap refreshed in %.0f ms, %d objects frozen",
                (time.perf_counter() - started) * 1000,
                gc.get_freeze_count(),
            )
        elif full_collections() != self._seen:
            gc.freeze()  # what survived it is long-lived: keep it out of the next ones
        self._seen = full_collections()
