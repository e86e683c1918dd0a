"""Entries a failed append left unlogged, appended again until the log takes them.

Peers hear an update as soon as it is queued for the log (issue 3), so after a failed append
(4503) they may hold another user's unlogged structs. Their resync would relay those under a
client id they do not own, which ownership refuses (gateway/live/ownership.py). So the gateway keeps
what it had accepted but not logged and appends it again, retrying with backoff, before the
letter is loaded here again: once it is in the log those structs are known, a peer's resync
repeats them harmlessly, and the author need not come back for them to be durable. An outage
is one WARNING per letter however often its clients reconnect (each reconnect is an attempt):
later failures go to DEBUG, and the landing is one INFO line with the number of attempts.

An append that timed out is unconfirmed, not failed: cancelling it takes nothing back from a
broker, which stores what it was sent once it wakes. So neither the room's append
(`UnconfirmedAppend`, gateway/live/appender.py) nor the rescue's own is cancelled or repeated
at its deadline: the rescue waits for its outcome, drops what landed and appends again only
what the log answered with an error. Until the outcome is known `ensure` refuses (4503), as
while the log is down. Were every entry resent after each timeout, a stalled broker would store
each of them once per resend when it wakes (the letters topic is kept for ever). Only an append
the log itself reports unconfirmed (LogUnconfirmedError: a Kafka request left unanswered past
the producer's request timeout) leaves the outcome unknown for good: its entries are appended
again, and consumers deduplicate by event id.

An entry the log refuses for good (RecordTooLargeError: larger than the Kafka topic takes) is
dropped, logged at ERROR and counted (gateway_rescue_dropped_records): retrying it would refuse
the letter (4503) until a restart. The entries around it are still appended. Its size goes to
`on_too_large`: its author and peers still hold a dropped update, and their resync would send
it again on each reconnect, failing the letter anew; the instance refuses such updates from
then on (Context.learn_refused, gateway/live/writes.py).

A named version cuts the letter at its own record, so it must follow what a rescue holds: the
request waits for it (`landed`, bounded; Rooms.logged) and is refused with 503 if it is not
in the log in time, rather than cut a version without edits the instance had accepted.
"""

import asyncio
import logging
from collections.abc import Callable, Sequence

from eventlog.errors import RecordTooLargeError
from eventlog.records import Entry, Log
from gateway.errors import LOG_UNAVAILABLE, Refused
from gateway.live.appender import UnconfirmedAppend
from gateway.live.confirmed import timed_out, within
from gateway.metrics import Metrics
from schemas.outages import Outage
from schemas.wording import counted

log = logging.getLogger(__name__)
FIRST_RETRY_S, MAX_RETRY_S = 0.5, 10.0


class Rescue:
    """One letter's unlogged entries (topic, key), retried in the background until appended."""

    def __init__(
        self,
        log_: Log,
        topic: str,
        key: bytes,
        entries: Sequence[Entry],
        timeout_s: float,
        on_done: Callable[["Rescue"], None] = lambda _: None,
        *,
        metrics: Metrics,
        on_too_large: Callable[[int], None] = lambda _: None,
        unconfirmed: UnconfirmedAppend | None = None,
    ) -> None:
        self._log, self._topic, self.key, self._timeout_s = log_, topic, key, timeout_s
        self._on_done, self._metrics, self._on_too_large = on_done, metrics, on_too_large
        self.entries = list(entries)
        # Appends of some of `entries` whose outcome decides whether they are appended again.
        self._unconfirmed = [unconfirmed] if unconfirmed is not None else []
        # Attempts the log refused or left waiting on an unconfirmed append since it last took
        # some: its first is the letter's one WARNING of the outage.
        self._outage = Outage()
        self._lock = asyncio.Lock()
        self.letter_id = key.decode()
        self._task = asyncio.create_task(self._retry(), name=f"rescue:{self.letter_id}")

    def add(self, entries: Sequence[Entry], unconfirmed: UnconfirmedAppend | None = None) -> None:
        """More unlogged entries of the same letter, after those already held (log order).
        Only for a rescue still pending: a finished one has left `Rooms` already."""
        self.entries.extend(entries)
        if unconfirmed is not None:
            self._unconfirmed.append(unconfirmed)

    async def attempt(self) -> bool:
        """Append what is held once; True when nothing is left."""
        async with self._lock:
            if not self._settle():
                return False
            if not self.entries:
                self._finish()
                return True
            batch = list(self.entries)
            try:
                await self._append(batch)
            except RecordTooLargeError:
                await self._one_by_one(batch)
            except Exception as exc:  # still down (or unconfirmed): the next attempt tries again
                self._failed(exc)
                return False
            else:
                del self.entries[: len(batch)]
                self._landed(len(batch))
            if not self.entries:
                self._finish()
            return not self.entries

    def _failed(self, exc: Exception) -> None:
        """An attempt the log refused. Told once per outage: each client's reconnect is an
        attempt too (`ensure`), and a WARNING each was hundreds of lines; the rest at DEBUG."""
        self._outage.failed(
            log,
            "rescue of %s: %d entries still unlogged (attempt %d, retried until the log takes"
            " them; further failures at DEBUG): %r",
            self.letter_id,
            len(self.entries),
            self._outage.attempt,
            exc,
        )

    def _landed(self, count: int, over: bool = True) -> None:
        """`count` entries appended: the log is back (`over`), a later outage is told anew."""
        attempts = counted(self._outage.attempt, "attempt")
        log.info(
            "rescue of %s: %s appended after %s",
            self.letter_id,
            counted(count, "entry", "entries"),
            attempts,
        )
        if over:
            self._outage.over()

    def _finish(self) -> None:
        if self._task is not asyncio.current_task():
            self._task.cancel()  # landed from `ensure`: no retry left to wait for
        self._on_done(self)

    def _settle(self) -> bool:
        """Apply the known outcomes of unconfirmed appends: what landed is done, what the log
        refused stays to be appended again. False while one is unknown: nothing is appended
        then (it would be twice if the first landed, and could overtake it)."""
        while self._unconfirmed:
            first = self._unconfirmed[0]
            if not first.settled():
                # An attempt of the outage, as a refused append is: each refused reconnect asks
                # again (an INFO each was a line per reconnect), so DEBUG after its first.
                self._outage.failed(
                    log,
                    "rescue of %s: %d entries wait for an unconfirmed append (further waits at"
                    " DEBUG)",
                    self.letter_id,
                    len(first.entries),
                )
                return False
            del self._unconfirmed[0]
            exc = first.outcome()
            if exc is None:
                landed = {id(entry) for entry in first.entries}
                self.entries = [entry for entry in self.entries if id(entry) not in landed]
                log.info("rescue of %s: %d unconfirmed entries landed", self.letter_id, len(landed))
                self._outage.over()  # the log took some: a later failure is a new outage
            elif timed_out(exc):  # LogUnconfirmedError: they may land yet, and again
                log.warning(
                    "rescue of %s: the outcome of an unconfirmed append stays unknown (%r):"
                    " appending its %d entries again, which may store them twice",
                    self.letter_id,
                    exc,
                    len(first.entries),
                )
            else:
                log.info("rescue of %s: an unconfirmed append failed: %r", self.letter_id, exc)
        return True

    async def _outcomes(self, timeout_s: float | None = None) -> None:
        """Wait (up to `timeout_s`) until the unconfirmed appends have an outcome."""
        calls = [unconfirmed.call for unconfirmed in self._unconfirmed]
        if calls:
            await asyncio.wait(calls, timeout=timeout_s)

    async def _append(self, entries: list[Entry]) -> None:
        """Append `entries`; UnconfirmedAppend if not done in time: it runs on and is waited
        for, never cancelled (nor when this attempt is: shutdown waits for it a while)."""

        def unconfirmed(call: "asyncio.Future[list[int]]") -> None:
            self._unconfirmed.append(UnconfirmedAppend(call, entries))

        appending = self._log.append(self._topic, self.key, entries)
        call = await within(appending, self._timeout_s, unconfirmed)
        if not call.done():
            raise self._unconfirmed[-1]
        call.result()

    async def _one_by_one(self, batch: list[Entry]) -> None:
        """The log refused an entry of `batch` for good: append them one at a time, in order,
        dropping those it refuses, until all are done or the log is down (the rest waits)."""
        appended, failure = 0, None
        for entry in batch:
            try:
                await self._append([entry])
            except RecordTooLargeError as exc:
                self._metrics.rescue_dropped.inc()
                self._on_too_large(len(entry.value))
                headers = dict(entry.headers)
                log.error(
                    "rescue of %s: an entry of %d bytes (%s by %s) dropped, the log refuses it"
                    " for good: %s",
                    self.letter_id,
                    len(entry.value),
                    headers.get("type", b"?").decode(errors="replace"),
                    headers.get("user", b"?").decode(errors="replace"),
                    exc,
                )
            except Exception as exc:
                failure = exc
                break
            else:
                appended += 1
            del self.entries[0]  # `entry`: `add` only appends behind it
        if appended:  # one line for them, not one per entry; the outage goes on if one failed
            self._landed(appended, over=failure is None)
        if failure is not None:
            self._failed(failure)

    async def ensure(self) -> None:
        """Before the letter loads here: append now, or Refused(4503) while the log is down."""
        if not await self.attempt():
            raise Refused(LOG_UNAVAILABLE, "log_unavailable")

    async def landed(self, timeout_s: float) -> bool:
        """Before a record that must follow what is held (a named version cuts the letter at
        its own position): wait up to `timeout_s` for unconfirmed outcomes and append the rest
        now. False when the log refuses it or the time is up: it stays held, retried as ever
        (an append cut off here runs on as unconfirmed, `_append`)."""
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    await self._outcomes()
                    if await self.attempt():
                        return True
                    if all(u.settled() for u in self._unconfirmed):
                        return False  # the log refused it: no outcome left to wait for
        except TimeoutError:
            return False

    async def _retry(self) -> None:
        delay = FIRST_RETRY_S
        while True:
            await asyncio.sleep(delay)
            await self._outcomes()  # ends by the log's own deadline at the latest
            if await self.attempt():
                return
            delay = min(delay * 2, MAX_RETRY_S)

    async def close(self) -> None:
        """Shutdown: stop retrying, give an unconfirmed append a bounded wait, and try one
        last time."""
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._outcomes(self._timeout_s)
        if not await self.attempt():
            log.error(
                "rescue of %s: %d entries lost at shutdown (%d of them may land yet)",
                self.letter_id,
                len(self.entries),
                sum(len(u.entries) for u in self._unconfirmed),
            )
