"""A Kafka outage in a bounded number of log lines.

With the broker down every aiokafka client of a process (the producer, followers, readers, a
group's consumer) retries about every 100 ms and logs an ERROR or WARNING each time ("Unable
connect to node with id ...", "Unable to update metadata ..."): 50-100 lines a second per
process, burying the services' own lines and flooding log collectors. `REPEATS`, a filter on
every aiokafka logger, lets the first record of each kind (`kind_of`: logger, level, message
with its numbers blanked, exception type) through, then at most one per `REPEAT_S`, which says
how many like it were dropped (DEBUG records all pass: someone asked for them).

`OutageWatch` says it once, in the log's own words: a KafkaLog's watch, woken by aiokafka's
first complaint, asks the broker for metadata; unanswered, it logs one WARNING "unreachable
since" and asks again every `PROBE_S` until answered, then one WARNING "reachable again".
"""

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

from schemas.outages import told_outage

log = logging.getLogger(__name__)
REPEAT_S = 30.0  # a kind of aiokafka record repeats in the output at most this often
PROBE_S = 1.0  # an unreachable broker is asked again this often


_NUMBERS = re.compile(r"\d+(?:\.\d+)?")


def kind_of(record: logging.LogRecord) -> tuple[str, int, str]:
    """A record's kind: its logger, level, and message as formatted with its numbers blanked
    (ports, node ids, seconds) and its exception's type. The same template with another error
    in it (a refusal after connection errors, another traceback) is another kind, shown at once."""
    error = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else ""
    return record.name, record.levelno, f"{_NUMBERS.sub('#', record.getMessage()[:300])} {error}"


class Repeats(logging.Filter):
    """Drops repeats of each kind of aiokafka record within `REPEAT_S` of the last one shown."""

    def __init__(self) -> None:
        super().__init__()
        self._shown: dict[tuple[str, int, str], tuple[float, int]] = {}  # at, dropped since
        self.dropped = 0  # ever, for the outage's summary
        self.listeners: set[Callable[[logging.LogRecord], None]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            for listener in list(self.listeners):
                listener(record)
        if record.levelno < logging.INFO:
            return True  # asked for when debugging: all of it
        key = kind_of(record)
        now = time.monotonic()
        shown = self._shown.get(key)
        if shown is not None and now - shown[0] < REPEAT_S:
            self._shown[key] = (shown[0], shown[1] + 1)
            self.dropped += 1
            return False
        if shown is not None and shown[1]:
            record.msg = f"{record.getMessage()} ({shown[1]} similar suppressed in {REPEAT_S:.0f}s)"
            record.args = None
        if len(self._shown) > 1000:  # kinds are few; messages with other data in them would grow it
            self._shown.clear()
        self._shown[key] = (now, 0)
        return True


REPEATS = Repeats()


def _aiokafka_loggers() -> list[logging.Logger]:
    names = [n for n in logging.root.manager.loggerDict if n.split(".")[0] == "aiokafka"]
    return [logging.getLogger(name) for name in ["aiokafka", *names]]


def quiet_aiokafka() -> None:
    """Put `REPEATS` on every aiokafka logger (a logger's filters see only its own records)."""
    for logger in _aiokafka_loggers():
        if REPEATS not in logger.filters:
            logger.addFilter(REPEATS)


class _Starting(logging.Filter):
    """While a log connects at start-up (`starting`), aiokafka's records but DEBUG are dropped:
    a start that fails says why in its error (the commands print it as one line, README
    "Operations"), and what a start that succeeded complained of on the way is over. Ahead of
    `REPEATS`, which would otherwise count them as shown and hold back a later one like them."""

    def __init__(self) -> None:
        super().__init__()
        self.starts = 0  # logs starting at once in this process

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.INFO


STARTING = _Starting()


@contextlib.contextmanager
def starting() -> Iterator[None]:
    """aiokafka kept quiet (`_Starting`) for the block: a log's start-up connection."""
    if STARTING.starts == 0:
        for logger in _aiokafka_loggers():
            logger.filters.insert(0, STARTING)
    STARTING.starts += 1
    try:
        yield
    finally:
        STARTING.starts -= 1
        if STARTING.starts == 0:
            for logger in _aiokafka_loggers():
                logger.removeFilter(STARTING)


class OutageWatch:
    """One log's outage, told once when it begins and once when it ends."""

    def __init__(self, where: str, answers: Callable[[], Any]) -> None:
        """`answers`: a coroutine function, True when the broker answered a metadata request."""
        self._where, self._answers = where, answers
        self._loop = asyncio.get_running_loop()
        self._probe: asyncio.Task[None] | None = None
        self._next_at = 0.0
        REPEATS.listeners.add(self._noticed)

    def _noticed(self, record: logging.LogRecord) -> None:
        # One probe at a time, at most one per PROBE_S: complaints come 100 a second.
        if self._probe is None and time.monotonic() >= self._next_at and not self._loop.is_closed():
            self._next_at = time.monotonic() + PROBE_S
            first = (record.created, record.getMessage())
            self._loop.call_soon_threadsafe(self._start, first)

    def _start(self, first: tuple[float, str]) -> None:
        if self._probe is None:
            self._probe = self._loop.create_task(self._watch(*first), name="kafka-outage-watch")

    async def _watch(self, since: float, first: str) -> None:
        dropped = REPEATS.dropped
        try:
            await told_outage(
                log,
                f"Kafka log {self._where}",
                since,
                first,
                self._answers,
                PROBE_S,
                meanwhile=f"; aiokafka's repeated errors are shown once per {REPEAT_S:.0f}s",
                after=lambda: f" ({REPEATS.dropped - dropped} aiokafka lines suppressed)",
            )
        finally:
            self._probe = None

    async def close(self) -> None:
        REPEATS.listeners.discard(self._noticed)
        if self._probe is not None:
            self._probe.cancel()
            await asyncio.gather(self._probe, return_exceptions=True)
