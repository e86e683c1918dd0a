"""`KafkaLog.close` on a stalled broker (Tansu SIGSTOPped): its clients stop at once, not one
after another. On a frozen broker each stop waits for its client's request in flight (a group's
coordinator lookup: up to two request timeouts); in turn they added up (18 s for a gateway).
On a stopped broker a follower's stop closes its client all the same."""

import asyncio
import contextlib
import logging
import time
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from eventlog.errors import LogError
from eventlog.kafka import KafkaLog, stopped
from eventlog.kafka_quiet import REPEATS
from eventlog.records import Entry
from steno_collab.processes import Supervised
from tests.eventlog.brokers import own_broker
from tests.support import frozen

__all__ = ["own_broker"]  # the fixture of tests/eventlog/brokers.py: a broker the test may freeze
TIMEOUT_S = 1.0  # the log's own request timeout
GROUPS = "abcd"


async def test_close_on_a_frozen_broker_stops_its_clients_at_once(
    own_broker: tuple[str, Supervised],
) -> None:
    bootstrap, proc = own_broker
    topic = f"c{uuid.uuid4().hex[:8]}.letters"
    log = KafkaLog(bootstrap, 1, {topic: None}, idempotence=False, append_timeout_s=TIMEOUT_S)
    await log.start()
    await log.append(topic, b"k", [Entry(b"one")])
    for group in GROUPS:
        await log.commit(group, topic, {0: 1})
    with frozen(proc.pid):
        commits = [asyncio.ensure_future(log.commit(g, topic, {0: 1})) for g in GROUPS]
        # Past their request timeout: each group's coordinator is looking for a new one, and
        # a consumer's stop waits for that lookup (measured: 1-2 request timeouts each).
        await asyncio.sleep(2 * TIMEOUT_S)
        began = time.monotonic()
        await log.close()
        took = time.monotonic() - began
    # One after another: about 1 + 2 + 2 + 2 request timeouts; at once: at most 2.
    assert took < 3.5 * TIMEOUT_S
    # The commits in flight end too (refused, or as aiokafka's stopped coordinator leaves
    # them): one of them never returned before (no bound of its own).
    done, _ = await asyncio.wait(commits, timeout=TIMEOUT_S)
    assert done == set(commits)
    assert all(c.exception() is None or isinstance(c.exception(), LogError) for c in commits)


def running_clients() -> list["asyncio.Task[object]"]:
    """The metadata tasks of aiokafka clients still open (close() ends it)."""
    name = "AIOKafkaClient._md_synchronizer"
    return [t for t in asyncio.all_tasks() if getattr(t.get_coro(), "__qualname__", "") == name]


@pytest.mark.parametrize("ends", ["cancelled", "closed"])
async def test_a_follower_stopped_while_its_fetch_backs_off_closes_its_client(
    own_broker: tuple[str, Supervised], ends: str
) -> None:
    """aiokafka's consumer stop re-raises the cancellation of a fetch it cancelled in its retry
    back-off before it closes its client: that client retried the stopped broker for good, an
    ERROR every 30 s in the worker's later tests (CI). Its follow cancelled (a gateway's tail
    at shutdown) or the log closed under it."""
    bootstrap, proc = own_broker
    topic = f"f{uuid.uuid4().hex[:8]}.letters"
    log = KafkaLog(bootstrap, 1, {topic: None}, idempotence=False, append_timeout_s=TIMEOUT_S)
    await log.start()
    failed = asyncio.Event()

    def noticed(record: logging.LogRecord) -> None:  # said by the fetch, then it backs off
        if record.getMessage().startswith("Failed fetch messages"):
            failed.set()

    REPEATS.listeners.add(noticed)
    try:
        await log.append(topic, b"k", [Entry(b"one")])
        async with contextlib.aclosing(log.follow(topic, {0: 0})) as batches:
            assert [r.value for r in await anext(batches)] == [b"one"]
            await proc.stop(timeout=1)
            following = asyncio.ensure_future(anext(batches))
            async with asyncio.timeout(10):
                await failed.wait()
            if ends == "cancelled":
                following.cancel()
            else:
                await log.close()
            await asyncio.gather(following, return_exceptions=True)
        await log.close()
    finally:
        REPEATS.listeners.discard(noticed)
        await log.close()
    assert running_clients() == []


@pytest.mark.parametrize("client", ["consumer", "producer"])
async def test_a_stop_cancelled_at_any_point_raises_the_cancellation(
    kafka_bootstrap: str, client: str
) -> None:
    """A task cancelled while `stopped` runs ends cancelled: aiokafka's closing swallows a
    cancellation landing inside its own `suppress(CancelledError)` (a reviewer's: from the third
    turn of the loop on), and the task went on as if never cancelled. Its client is closed."""
    for turns in range(10):
        made = (
            AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap)
            if client == "consumer"
            else AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        )
        await made.start()
        stopping = asyncio.ensure_future(stopped(made))
        for _ in range(turns):
            await asyncio.sleep(0)
        if stopping.done():
            break  # stopped before being cancelled: nothing left to try
        stopping.cancel()
        await asyncio.gather(stopping, return_exceptions=True)
        assert stopping.cancelled(), f"cancelled after {turns} turns: {stopping!r}"
        await stopped(made)  # what the caller's own cleanup does: closes what is left
    assert running_clients() == []
