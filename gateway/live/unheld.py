"""Reads of letters this instance does not hold (REST `GET /v1/letters/{id}`, comment anchors):
each is rebuilt from the projector's snapshot and the log after it (`loader.load`).

A rebuild from the log alone costs ~90 ms for a letter of 10,000 edits, ~30 ms of it on the
event loop in pieces of a few milliseconds; twenty at once put ~0.6 s of such pieces (20 x
~30 ms) in the way of every editor on the instance (docs/performance.md). So:
- requests for a letter whose rebuild has not begun yet share that rebuild, and one that comes
  once it has begun waits for the next, which begins when that one ends: every answer still
  holds what was in the log when its request arrived (read-your-writes, as for a single
  request), and a letter is rebuilt once at a time;
- at most `at_once` letters are rebuilt at a time; the rest wait their turn.
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from eventlog.errors import LogClosedError


class UnheldReads:
    def __init__(self, load: Callable[[str], Awaitable[bytes]], at_once: int) -> None:
        self._load = load
        self._turns = asyncio.Semaphore(at_once)
        self._waiting: dict[str, asyncio.Future[bytes]] = {}  # rebuilds not begun, by letter
        self._tasks: set[asyncio.Task[None]] = set()
        self._last: dict[str, asyncio.Task[Any]] = {}  # the latest rebuild, by letter

    async def state(self, letter_id: str) -> bytes:
        """The letter's state (b"" when it has no content) as of this call or later."""
        future = self._waiting.get(letter_id)
        if future is None:
            future = self._waiting[letter_id] = asyncio.get_running_loop().create_future()
            future.add_done_callback(_retrieved)
            task = asyncio.create_task(self._rebuild(letter_id, future), name=f"read:{letter_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        # Shielded: a request that goes away does not cancel the others' rebuild.
        return await asyncio.shield(future)

    async def _rebuild(self, letter_id: str, future: asyncio.Future[bytes]) -> None:
        # One rebuild of a letter at a time: this one begins after the one before it ended.
        me = asyncio.current_task()
        assert me is not None
        before, self._last[letter_id] = self._last.get(letter_id), me
        try:
            if before is not None:
                await asyncio.wait([before])
            async with self._turns:
                del self._waiting[letter_id]  # from now on a new request waits for the next one
                future.set_result(await self._load(letter_id))
        except BaseException as exc:  # the requests get it; cancelled (at close): a LogError
            if self._waiting.get(letter_id) is future:
                del self._waiting[letter_id]
            if not future.done():
                closed = LogClosedError(f"gateway closing: {letter_id} not read")
                future.set_exception(exc if isinstance(exc, Exception) else closed)
            if not isinstance(exc, Exception):
                raise
        finally:
            if self._last.get(letter_id) is me:
                del self._last[letter_id]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def in_flight(self) -> int:
        """Rebuilds running or waiting for their turn."""
        return len(self._tasks)


def _retrieved(future: "asyncio.Future[bytes]") -> None:
    # Every request may have gone away before the rebuild ended: nobody to read its error.
    if not future.cancelled():
        future.exception()
