"""A request's own append, answered within `append_timeout_s`, its failures told apart.

REST requests and app commands that append their records themselves (a letter's creation, a
named version, a comment, a lock change) answer once the log confirms them. Two failures look
alike to the caller but are not:
- the log refused the records (it is closed, it reported an error, a record is too large):
  nothing took effect, the request may be sent again (503);
- the log did not confirm them in time: they were handed to it and may still land (a stalled
  Kafka broker takes a request it had received once it wakes; the embedded writer commits what
  it was given after the caller gave up). Sending the request again may do it twice:
  `Unconfirmed` (504), the caller checks first.
The append is not cancelled at the deadline: cancelling takes nothing back from a broker, and
letting it run tells this instance the outcome (`landed`). `within` and `run_on` are that rule
for every append of the gateway (the rooms' batches and their rescues too).
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any, TypeVar

from eventlog.errors import LogUnavailableError
from eventlog.records import Entry, Log
from gateway.metrics import Metrics

log = logging.getLogger(__name__)
UNCONFIRMED = (
    "the log did not confirm in time: the request may still take effect; check before retrying"
)
Landed = Callable[[list[int]], None]
Refused = Callable[[BaseException], None]
T = TypeVar("T")
_late: set["asyncio.Future[Any]"] = set()  # appends still running past their deadline


async def within(
    work: Awaitable[T],
    timeout_s: float,
    running_on: Callable[["asyncio.Future[T]"], None] | None = None,
) -> "asyncio.Future[T]":
    """`work`, given up to `timeout_s`: its future, done or still running. One still running
    is never cancelled, not at the deadline nor when the caller is (`run_on`); `running_on`
    gets it then, also when the caller was cancelled."""
    call = asyncio.ensure_future(work)
    try:
        await asyncio.wait([call], timeout=timeout_s)
    finally:
        if not call.done():
            run_on(call)
            if running_on is not None:
                running_on(call)
    return call


def run_on(call: "asyncio.Future[Any]") -> None:
    """Keep `call` running past its deadline, referenced until it ends; its error is read then
    (no "never retrieved" warning when no one waits for it any more)."""
    _late.add(call)
    call.add_done_callback(_ended)


def _ended(call: "asyncio.Future[Any]") -> None:
    _late.discard(call)
    if not call.cancelled():
        call.exception()


class Unconfirmed(Exception):
    """The records were handed to the log, which did not confirm them in time: they may land."""

    def __init__(self) -> None:
        super().__init__(UNCONFIRMED)


async def append_confirmed(
    log_: Log,
    topic: str,
    key: bytes,
    entries: Sequence[Entry],
    timeout_s: float,
    landed: Landed | None = None,
    refused: Refused | None = None,
    *,
    metrics: Metrics | None = None,
) -> list[int]:
    """`log_.append`, within `timeout_s`: its offsets; a LogError the log answered with (a
    refusal); or Unconfirmed. `landed` gets the offsets if they come after the deadline,
    `refused` the log's error if it refuses them after it (not a timeout of its own: then the
    outcome stays unknown). `metrics`: the append's time goes to `gateway_append_seconds`
    when it ends, as the rooms' appends do (gateway/live/appender.py)."""

    def running_on(task: "asyncio.Future[list[int]]") -> None:  # the request cancelled, too
        task.add_done_callback(partial(_settled, landed, refused))

    call = log_.append(topic, key, entries)
    work = call if metrics is None else _timed(call, metrics, topic)
    task = await within(work, timeout_s, running_on)
    if not task.done():
        raise Unconfirmed()
    try:
        return task.result()
    except LogUnavailableError as exc:
        if timed_out(exc):  # the log's own deadline (KafkaLog's), not an answer
            raise Unconfirmed() from exc
        raise


async def _timed(call: Awaitable[T], metrics: Metrics, topic: str) -> T:
    started = time.perf_counter()
    try:
        return await call
    finally:  # refused or late too: the log's time to answer, as the rooms' appends count it
        metrics.appended(topic, time.perf_counter() - started)


def timed_out(exc: BaseException) -> bool:
    """Whether `exc` comes of a timeout: the records were sent, their answer did not come."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, TimeoutError):
            return True
        seen = seen.__cause__
    return False


def _settled(
    landed: Landed | None, refused: Refused | None, task: "asyncio.Future[list[int]]"
) -> None:
    if task.cancelled():
        return
    exc = task.exception()  # retrieved either way: no "never retrieved" warning
    if exc is not None:
        log.info("an unconfirmed append failed after all: %r", exc)
    try:
        if exc is None and landed is not None:
            landed(task.result())
        elif exc is not None and refused is not None and not timed_out(exc):
            refused(exc)
    except Exception:
        log.exception("after a late append")
