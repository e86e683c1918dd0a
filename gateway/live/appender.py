"""Appends to the log: per letter in order, batched across letters per event-loop tick.

Each room has an `Appender` per topic, its FIFO. All appenders of one topic in an instance
share a `Batcher`: its one task takes everything queued since its last append and writes it
with one `Log.append_batch` call (for the embedded log, one group commit). A letter's entries
keep the order they were queued in, so the log's order is the order the gateway accepted
updates: they leave in queue order and the next batch goes only once the last one completed, or
was given up on at `append_timeout_s`. A batch given up on is not cancelled (cancelling takes
nothing back from a broker, which stores what it was sent once it wakes): it runs on, and each
of its letters fails with `UnconfirmedAppend`, which the rescue (gateway/live/rescue.py) waits on
before it appends anything of the letter again, so a late landing is not appended twice.
One task per topic rather than one per letter: at 2,500 appends/s the per-letter task round
trips cost ~30 us of the event loop per append (docs/performance.md).

A batch goes once its oldest entry has waited `append_linger_ms` (Kafka's producer
`linger.ms`), so that updates arriving over a few milliseconds share one transaction: each
append costs both threads a fixed share (a commit, a thread hand-off, a task wake-up), which at
2,500 updates/s spread over time was about a quarter of the gateway's CPU. Counted from the
oldest entry, not from the last append: entries that waited through a slow append go at once,
and quick appends do not follow each other back to back (that was ~340 transactions/s at 2,500
updates/s, the writer thread twice as busy). Peers never wait for it (they hear an update as it
is queued); only the sender's echo, the acknowledgement, comes that much later. Every entry counts
towards the instance's intake from queued to appended or handed back: above its limit,
connections stop reading (gateway/live/intake.py).
"""

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from eventlog.records import Entry, Log
from gateway.live.confirmed import run_on
from gateway.live.intake import Intake, cost
from gateway.metrics import Metrics

log = logging.getLogger(__name__)
Done = Callable[[], None]
OnFailure = Callable[[BaseException, Sequence[Entry]], None]
MAX_BATCH = 2000  # entries per append_batch call; the rest goes in the next one
Results = Sequence[list[int] | Exception]


class UnconfirmedAppend(Exception):
    """A letter's append the log did not confirm in time: it runs on, its `entries` may land.
    `outcome()`, once `settled()`: None if they landed, else the error the append ended with."""

    def __init__(
        self, call: "asyncio.Future[Any]", entries: Sequence[Entry], index: int | None = None
    ) -> None:
        super().__init__("the log did not confirm an append in time: it may still land")
        self.call, self.entries, self._index = call, list(entries), index  # index: in a batch

    def settled(self) -> bool:
        return self.call.done()

    def outcome(self) -> BaseException | None:
        if self.call.cancelled():
            return asyncio.CancelledError()
        exc = self.call.exception()
        if exc is not None or self._index is None:
            return exc
        result = self.call.result()[self._index]
        return result if isinstance(result, Exception) else None


class Appender:
    """One letter's FIFO for one topic."""

    def __init__(self, batcher: "Batcher", key: bytes, on_failure: OnFailure) -> None:
        self.key, self._batcher, self._on_failure = key, batcher, on_failure
        self.failed = False
        self._queued = self._logged = 0  # entries ever queued, ever appended
        # Flushes waiting: (entries queued when each was asked, its future), in that order.
        # A mark, not "nothing pending": under steady typing the queue is never empty.
        self._marks: deque[tuple[int, asyncio.Future[None]]] = deque()

    def put(self, entry: Entry, done: Done | None = None) -> None:
        """Queue `entry`; `done` runs once it is durable (never, if the append fails: then
        `on_failure` gets the exception and every entry not known to be appended, in order)."""
        if self.failed:
            return
        self._queued += 1
        self._batcher.put(self, entry, done)

    async def flush(self) -> None:
        """Wait until everything queued so far is appended (or the appender failed); what is
        queued meanwhile is not waited for."""
        if self.failed or self._logged >= self._queued:
            return
        mark: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._marks.append((self._queued, mark))
        await mark

    async def close(self) -> None:
        await self.flush()

    def appended(self, count: int) -> None:
        self._logged += count
        while self._marks and self._marks[0][0] <= self._logged:
            self._reached(self._marks.popleft()[1])

    def fail(self, exc: BaseException, entries: Sequence[Entry]) -> None:
        """`entries` did not make it: neither do the ones queued behind them."""
        if self.failed:
            return
        self.failed = True
        unlogged = [*entries, *self._batcher.take_back(self)]
        for _, mark in self._marks:  # nothing more will be appended here: the rescue has it
            self._reached(mark)
        self._marks.clear()
        self._on_failure(exc, unlogged)

    @staticmethod
    def _reached(mark: "asyncio.Future[None]") -> None:
        if not mark.done():  # a flush given up on (its caller's deadline) is cancelled
            mark.set_result(None)


class Batcher:
    """The appends of one topic for all of an instance's letters."""

    def __init__(
        self,
        log: Log,
        topic: str,
        metrics: Metrics,
        timeout_s: float,
        linger_s: float = 0.0,
        intake: Intake | None = None,
    ) -> None:
        self._log, self._topic, self._metrics, self._timeout_s = log, topic, metrics, timeout_s
        self._linger_s = linger_s
        self._intake = intake
        self._queue: list[tuple[Appender, Entry, Done | None]] = []
        self._wake = asyncio.Event()
        self._oldest = 0.0  # when the oldest queued entry was queued
        self._task: asyncio.Task[None] | None = None
        # Letters whose append went unconfirmed, for their rescue to wait on (`unconfirmed`).
        self._unconfirmed: dict[bytes, UnconfirmedAppend] = {}

    def appender(self, key: bytes, on_failure: OnFailure) -> Appender:
        return Appender(self, key, on_failure)

    def put(self, appender: Appender, entry: Entry, done: Done | None) -> None:
        if not self._queue:
            self._oldest = time.monotonic()
        self._queue.append((appender, entry, done))
        if self._intake is not None:
            self._intake.queued(cost(entry))
        self._wake.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"append:{self._topic}")

    def take_back(self, appender: Appender) -> list[Entry]:
        """Remove `appender`'s queued entries (it failed) and return them, in order."""
        mine = [entry for owner, entry, _ in self._queue if owner is appender]
        if mine:
            self._queue = [item for item in self._queue if item[0] is not appender]
            self._release(mine)
        return mine

    def unconfirmed(self, key: bytes) -> UnconfirmedAppend | None:
        """The unconfirmed append that failed `key`'s letter (taken: the rescue waits on it)."""
        return self._unconfirmed.pop(key, None)

    async def close(self) -> None:
        """Stop the task; callers flushed their appenders first."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                wait = self._oldest + self._linger_s - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                try:
                    await self._append(batch)
                except Exception as exc:  # a bug, not a log error (those come back as results)
                    # Fail this round's letters (4503, their clients resync) rather than end
                    # the task and with it every letter's appends.
                    log.exception("append round of %d entries failed", len(batch))
                    self._fail(batch, exc)
                finally:  # appended, failed (the rescue has them now) or cancelled at shutdown
                    self._release([entry for _, entry, _ in batch])
                    # Not kept while idle: it would hold its letters' rooms after they unload.
                    del batch

    @staticmethod
    def _fail(batch: list[tuple[Appender, Entry, Done | None]], exc: BaseException) -> None:
        unlogged: dict[Appender, list[Entry]] = {}
        for appender, entry, _ in batch:
            unlogged.setdefault(appender, []).append(entry)
        for appender, entries in unlogged.items():
            _guarded(appender.fail, exc, entries)  # a no-op for one that failed already

    def _release(self, entries: list[Entry]) -> None:
        if self._intake is not None:
            self._intake.released(sum(cost(entry) for entry in entries))

    async def _append(self, batch: list[tuple[Appender, Entry, Done | None]]) -> None:
        groups: dict[Appender, list[tuple[Entry, Done | None]]] = {}
        for appender, entry, done in batch:
            if not appender.failed:
                groups.setdefault(appender, []).append((entry, done))
        if not groups:
            return
        started = time.perf_counter()
        work = [(a.key, [entry for entry, _ in items]) for a, items in groups.items()]
        results: Results = await self._call(work)
        self._metrics.appended(self._topic, time.perf_counter() - started)
        for (appender, items), result in zip(groups.items(), results, strict=True):
            if isinstance(result, UnconfirmedAppend):
                # Registered before `fail`: the rescue, created within it, takes it.
                self._unconfirmed[appender.key] = result
                result.call.add_done_callback(partial(self._forget, appender.key, result))
            if isinstance(result, Exception):
                # A RecordTooLargeError too fails the room (4503): its peers heard the update.
                # So does an unconfirmed append, and that keeps the letter's order: the letter
                # is failed, so nothing more of it is queued here, and its rescue appends what
                # followed only once this append's outcome is known (gateway/live/rescue.py).
                _guarded(appender.fail, result, [entry for entry, _ in items])
                continue
            appender.appended(len(items))
            for _, done in items:
                if done is not None:
                    _guarded(done)

    async def _call(self, work: list[tuple[bytes, list[Entry]]]) -> Results:
        """One `append_batch`: its results, an `UnconfirmedAppend` per letter if it is not done
        in time (it runs on), or the error for every letter."""
        call = asyncio.ensure_future(self._log.append_batch(self._topic, work))
        try:
            await asyncio.wait([call], timeout=self._timeout_s)
        except asyncio.CancelledError:  # shutdown: nothing of it is waited for any more
            call.cancel()
            raise
        if not call.done():
            run_on(call)
            return [UnconfirmedAppend(call, entries, i) for i, (_, entries) in enumerate(work)]
        try:
            return call.result()
        except Exception as exc:  # LogUnavailableError, LogClosedError: all of them
            return [exc] * len(work)

    def _forget(self, key: bytes, unconfirmed: UnconfirmedAppend, _call: object) -> None:
        # Not taken by a rescue (a presence append): dropped once it settled.
        if self._unconfirmed.get(key) is unconfirmed:
            del self._unconfirmed[key]


def _guarded(callback: Callable[..., None], *args: object) -> None:
    # One letter's callback failing must not stop the task every letter appends through.
    try:
        callback(*args)
    except Exception:
        log.exception("append callback %r failed", callback)
