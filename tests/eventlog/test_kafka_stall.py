"""A stalled broker (Tansu SIGSTOPped) and `KafkaLog.append`: the append reports what became of
its records. It gave up at its own deadline while the producer still held them, and the broker
stored them once it woke: a caller that appended them again stored them twice."""

import asyncio
import gc
import time
import uuid
from typing import Any

import pytest
from aiokafka.errors import KafkaError

from eventlog.errors import LogUnavailableError, LogUnconfirmedError
from eventlog.kafka import KafkaLog
from eventlog.records import Entry
from steno_collab.processes import Supervised
from tests.eventlog.brokers import own_broker
from tests.support import eventually, frozen

__all__ = ["own_broker"]  # the fixture (tests/eventlog/brokers.py): a broker it may stop or kill
DEADLINE_S = 1.0  # the log's own deadline; each stall outlasts it


async def _started(bootstrap: str, ack_timeout_s: float) -> tuple[KafkaLog, str]:
    topic = f"s{uuid.uuid4().hex[:8]}.letters"
    log = KafkaLog(
        bootstrap,
        1,
        {topic: None},
        idempotence=False,
        append_timeout_s=DEADLINE_S,
        ack_timeout_s=ack_timeout_s,
    )
    await log.start()
    return log, topic


async def _values(log: KafkaLog, topic: str) -> list[bytes]:
    return [r.value for r in await log.read(topic, 0, 0)]


async def test_an_append_outlasting_the_logs_deadline_reports_its_true_outcome(
    own_broker: tuple[str, Supervised],
) -> None:
    bootstrap, proc = own_broker
    log, topic = await _started(bootstrap, ack_timeout_s=10)
    try:
        with frozen(proc.pid):
            call = asyncio.ensure_future(log.append(topic, b"k", [Entry(b"one"), Entry(b"two")]))
            thaw = time.monotonic() + 3 * DEADLINE_S
            while time.monotonic() < thaw:  # the stall, watched: the append does not give up
                assert not call.done()
                await asyncio.sleep(0.1)
        assert await call == [0, 1]  # stored once the broker woke, and said so
        assert await _values(log, topic) == [b"one", b"two"]
    finally:
        await log.close()


async def test_a_request_the_broker_never_answered_is_unconfirmed_not_refused(
    own_broker: tuple[str, Supervised],
) -> None:
    """Past the producer's own request timeout the outcome stays unknown: the broker may store
    the request once it wakes (and does), so the error must not read as a refusal."""
    bootstrap, proc = own_broker
    # Long enough for the producer to send the batch on a loaded machine: one it had not sent
    # by then expires unsent, which is a refusal (and right), not what this test is about.
    log, topic = await _started(bootstrap, ack_timeout_s=3 * DEADLINE_S)
    try:
        # Connected first: a connection opened during the stall gets no answer to its opening
        # request, so nothing is sent on it (a refusal; the test below).
        assert await log.append(topic, b"k", [Entry(b"zero")]) == [0]
        with frozen(proc.pid):
            with pytest.raises(LogUnconfirmedError) as caught:
                await log.append(topic, b"k", [Entry(b"one")])
        assert isinstance(caught.value, TimeoutError)  # what callers tell unconfirmed by
        await eventually(lambda: _stored(log, topic, [b"zero", b"one"]), timeout=10)
    finally:
        await log.close()


async def test_records_a_dead_broker_never_got_are_refused(
    own_broker: tuple[str, Supervised],
) -> None:
    bootstrap, proc = own_broker
    log, topic = await _started(bootstrap, ack_timeout_s=DEADLINE_S)
    try:
        assert await log.append(topic, b"k", [Entry(b"one")]) == [0]
        proc.popen.kill()  # connections refused: nothing is sent
        await asyncio.to_thread(proc.popen.wait)
        with pytest.raises(LogUnavailableError) as caught:
            await log.append(topic, b"k", [Entry(b"two")])
        assert not isinstance(caught.value, LogUnconfirmedError)
    finally:
        await log.close()


async def test_an_append_cancelled_while_handing_over_reads_what_it_handed_over(
    own_broker: tuple[str, Supervised],
) -> None:
    """Cancelled while the producer still took its records, an append left the outcomes of
    those it had handed over unread: "Future exception was never retrieved" at shutdown."""
    bootstrap, proc = own_broker
    log, topic = await _started(bootstrap, ack_timeout_s=DEADLINE_S)
    producer: Any = log._producer
    try:
        assert await log.append(topic, b"k", [Entry(b"zero")]) == [0]  # connected first
        before = _unread_failures()
        # A batch (16 KiB) holds one of these: the third waits for the second's batch to
        # leave, and it cannot while the first is in flight to the frozen broker.
        big = [Entry(bytes(12 << 10)) for _ in range(3)]
        with frozen(proc.pid):
            call = asyncio.ensure_future(log.append(topic, b"k", big))
            await eventually(lambda: bool(producer._sender._in_flight))  # the first is sent
            assert not call.done()
            call.cancel()
            await asyncio.gather(call, return_exceptions=True)
            await producer.flush()  # every record handed over has failed (request timeout)
        # Looked for, not waited for at collection: aiokafka keeps a batch for a while.
        assert _unread_failures() - before == set()
    finally:
        await log.close()


def _unread_failures() -> set[int]:
    """Futures whose Kafka error nobody read: asyncio reports each when it is collected."""
    return {
        id(f)
        for f in gc.get_objects()
        if isinstance(f, asyncio.Future)
        and f.done()
        and isinstance(getattr(f, "_exception", None), KafkaError)
        and getattr(f, "_log_traceback", False)
    }


async def _stored(log: KafkaLog, topic: str, values: list[bytes]) -> bool:
    try:
        return await _values(log, topic) == values
    except LogUnavailableError:  # the broker still waking
        return False
