"""A stalled broker (Tansu SIGSTOPped past `append_timeout_s`) must not multiply a letter's
records. The timed-out append was cancelled and its entries resent by the rescue after each of
its own timeouts, but cancelling takes nothing back from a broker: every send landed when it
woke (444 records for 228 event ids after 80 s). Now a timed-out append is unconfirmed: the room
still fails (4503), and the rescue waits for that append's outcome instead of resending."""

import asyncio
import logging
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import websockets
from pycrdt import Doc

from eventlog.factory import topic_retention
from eventlog.kafka import KafkaLog
from eventlog.records import Entry
from gateway.errors import LOG_UNAVAILABLE, Refused
from gateway.live import rescue as rescue_module
from gateway.live.appender import UnconfirmedAppend
from gateway.live.rescue import Rescue
from gateway.metrics import Metrics
from schemas.events import Topic
from schemas.settings import Settings
from steno_collab.processes import Supervised
from tests.conftest import start_tansu
from tests.gateway.faults import FaultyLog
from tests.gateway.harness import Running, YClient, running_gateway
from tests.support import eventually, frozen, started_log

TOPIC, KEY = "steno.letters", b"letter-1"
TIMEOUT_S = 1.0  # the gateway's append deadline; the broker stays frozen well past it


@pytest_asyncio.fixture(loop_scope="session")
async def stalling(tmp_path: Path) -> AsyncIterator[tuple[Running, Supervised]]:
    """A gateway on a Tansu broker of its own, which the test may freeze."""
    broker, bootstrap = await start_tansu(tmp_path / "tansu.log")
    settings = Settings(
        data_dir=tmp_path / "steno", partitions=2, topic_prefix=f"s{uuid.uuid4().hex[:8]}.",
        log_url=f"kafka://{bootstrap}", kafka_idempotence=False, append_timeout_s=TIMEOUT_S,
    )  # fmt: skip
    try:
        async with running_gateway(settings) as running:
            yield running, broker
    finally:
        os.kill(broker.pid, signal.SIGCONT)
        await broker.stop(timeout=5)


async def test_a_stalled_broker_stores_each_event_once_and_every_update(
    stalling: tuple[Running, Supervised],
) -> None:
    gw, broker = stalling
    letter, alice, bob = await gw.two_editors()
    await alice.insert("a1 ")
    await bob.insert("b1 ")
    await eventually(lambda: _logged(gw, letter, "a1 ", "b1 "))

    with frozen(broker.pid):
        thaw = time.monotonic() + 3 * TIMEOUT_S  # a stall of a few deadlines
        for n in range(5):  # typing on, past the append deadline
            await alice.insert(f"a2.{n} ")
            await bob.insert(f"b2.{n} ")
        await alice.closed.wait()
        await bob.closed.wait()
        assert alice.close_code == bob.close_code == LOG_UNAVAILABLE  # not believed durable
        # Their providers reconnect while the broker is still frozen: refused until the first
        # append's outcome is known (each attempt resent everything before).
        while time.monotonic() < thaw:
            assert await _connect(gw, letter, "alice", alice.doc) == LOG_UNAVAILABLE
            await asyncio.sleep(0.3)  # a provider's reconnect pace, not a synchronisation
        alice.text.insert(len(alice.text), "a3 ")  # typed while disconnected

    alice = await _reconnect(gw, letter, "alice", alice)
    bob = await _reconnect(gw, letter, "bob", bob)
    await alice.insert("a4 ")
    await bob.insert("b4 ")
    typed = ["a1 ", "b1 ", *(f"{w}2.{n} " for n in range(5) for w in "ab"), "a3 ", "a4 ", "b4 "]
    await eventually(lambda: _logged(gw, letter, *typed), timeout=20)  # durable, all of it
    await alice.close()
    await bob.close()

    ids = Counter(dict(r.headers)["id"] for r in await gw.records(Topic.LETTERS, letter))
    assert [i for i, n in ids.items() if n > 1] == []  # each event stored once


async def _reconnect(gw: Running, letter: str, user: str, old: YClient) -> YClient:
    """Reconnect with `old`'s document, as a provider does, until the gateway takes it."""
    found: list[YClient] = []

    async def synced() -> bool:
        return await _connect(gw, letter, user, old.doc, found) is None

    await eventually(synced, timeout=15, interval=0.2)  # a provider backs off too
    return found[0]


async def _connect(
    gw: Running, letter: str, user: str, doc: Doc[Any], found: list[YClient] | None = None
) -> int | None:
    """Connect with `doc`: None once synced (the client added to `found`), else the close code."""
    try:
        client = await YClient.connect(gw.ws_url(letter, gw.token(user=user)), doc=doc)
    except websockets.ConnectionClosed as exc:  # refused before the sync step went out
        return -1 if exc.rcvd is None else exc.rcvd.code
    await eventually(lambda: client.synced.is_set() or client.closed.is_set())
    if client.closed.is_set():
        return client.close_code
    if found is not None:
        found.append(client)
    return None


@pytest_asyncio.fixture
async def held(tmp_path: Path) -> AsyncIterator[FaultyLog]:
    """The embedded log behind a gate that holds appends (delays them, not fails them)."""
    async with started_log(Settings(data_dir=tmp_path / "steno", partitions=1)) as real:
        log = FaultyLog(real)
        try:
            yield log
        finally:
            log.gate.set()  # what is still held lands before the log closes
            await eventually(lambda: log.waiting == 0)


def _rescue(log: FaultyLog, entries: list[Entry], **kw: Any) -> tuple[Rescue, list[Rescue]]:
    done: list[Rescue] = []
    return Rescue(log, TOPIC, KEY, entries, 0.2, done.append, metrics=Metrics(), **kw), done


async def _stored(log: FaultyLog) -> list[bytes]:
    return [r.value for r in await log.read(TOPIC, 0, 0)]


async def test_a_rescue_append_that_times_out_is_waited_for_not_sent_again(
    held: FaultyLog, caplog: pytest.LogCaptureFixture
) -> None:
    held.gate.clear()  # the log stalls
    rescue, done = _rescue(held, [Entry(b"one"), Entry(b"two")])
    with caplog.at_level(logging.DEBUG, logger="gateway.live.rescue"):
        for _ in range(4):  # reconnects: each sent everything again
            with pytest.raises(Refused):
                await rescue.ensure()
    assert held.waiting == 1  # the first append, running on
    waits = [r.levelno for r in caplog.records if "wait for an unconfirmed" in r.getMessage()]
    assert waits == [logging.DEBUG] * 3  # the outage is told once: by the first attempt
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warned) == 1 and "still unlogged (attempt 1" in warned[0], warned
    held.gate.set()
    await eventually(lambda: done == [rescue])
    assert await _stored(held) == [b"one", b"two"]


async def test_an_unconfirmed_append_that_fails_is_appended_again(held: FaultyLog) -> None:
    held.gate.clear()
    first = [Entry(b"one")]
    call = asyncio.ensure_future(held.append(TOPIC, KEY, first))  # the room's, timed out
    rescue, done = _rescue(
        held, [*first, Entry(b"two")], unconfirmed=UnconfirmedAppend(call, first)
    )
    with pytest.raises(Refused):  # outcome unknown
        await rescue.ensure()
    held.broken = True
    held.gate.set()
    await asyncio.wait([call])  # the log answered with an error: nothing stored
    held.broken = False
    await rescue.ensure()
    assert done == [rescue] and await _stored(held) == [b"one", b"two"]


async def test_shutdown_waits_for_an_unconfirmed_append_a_bounded_time(
    held: FaultyLog, caplog: pytest.LogCaptureFixture
) -> None:
    held.gate.clear()  # and it never wakes before the shutdown
    rescue, _ = _rescue(held, [Entry(b"one")])
    with pytest.raises(Refused):
        await rescue.ensure()
    with caplog.at_level(logging.ERROR, logger="gateway.live.rescue"):
        async with asyncio.timeout(2):
            await rescue.close()
    assert "1 entries lost at shutdown (1 of them may land yet)" in caplog.text


async def _logged(gw: Running, letter: str, *parts: str) -> bool:
    text = await gw.logged_text(letter)
    return all(part in text for part in parts)


KAFKA_S = 1.5  # the Kafka log's own deadline (for calls, and for handing records over)
ACK_S = 10.0  # its producer's request timeout: the stall ends within it


@pytest_asyncio.fixture(loop_scope="session")
async def stalling_past_kafka(tmp_path: Path) -> AsyncIterator[tuple[Running, Supervised]]:
    """As `stalling`, with a KafkaLog whose own deadline the broker's stall outlasts."""
    broker, bootstrap = await start_tansu(tmp_path / "tansu.log")
    settings = Settings(
        data_dir=tmp_path / "steno", partitions=2, topic_prefix=f"k{uuid.uuid4().hex[:8]}.",
        log_url=f"kafka://{bootstrap}", kafka_idempotence=False, append_timeout_s=0.5,
    )  # fmt: skip
    wanted = topic_retention(settings)
    log = KafkaLog(
        bootstrap, 2, wanted, idempotence=False, append_timeout_s=KAFKA_S, ack_timeout_s=ACK_S
    )
    try:
        await log.start()
        async with running_gateway(settings, log) as running:
            yield running, broker
    finally:
        os.kill(broker.pid, signal.SIGCONT)
        await log.close()
        await broker.stop(timeout=5)


async def test_a_stall_past_the_kafka_logs_own_deadline_stores_each_event_once(
    stalling_past_kafka: tuple[Running, Supervised],
) -> None:
    """The Kafka log gave up at its own deadline on records its producer still held and sent
    once the broker woke, and the rescue appended them again after that outcome: the broker
    stored both. Now the log waits for the producer's outcome (tests/eventlog/test_kafka_stall.py
    for a stall past the producer's own request timeout)."""
    gw, broker = stalling_past_kafka
    letter, alice, bob = await gw.two_editors()
    await alice.insert("a1 ")
    await eventually(lambda: _logged(gw, letter, "a1 "))

    with frozen(broker.pid):
        thaw = time.monotonic() + 3 * KAFKA_S
        for n in range(3):
            await alice.insert(f"a2.{n} ")
            await bob.insert(f"b2.{n} ")
        await alice.closed.wait()
        await bob.closed.wait()
        while time.monotonic() < thaw:  # providers reconnecting through the stall
            await _connect(gw, letter, "alice", alice.doc)
            await asyncio.sleep(0.3)  # a provider's reconnect pace, not a synchronisation
        alice.text.insert(len(alice.text), "a3 ")

    alice = await _reconnect(gw, letter, "alice", alice)
    bob = await _reconnect(gw, letter, "bob", bob)
    await alice.insert("a4 ")
    typed = ["a1 ", *(f"{w}2.{n} " for n in range(3) for w in "ab"), "a3 ", "a4 "]
    await eventually(lambda: _logged(gw, letter, *typed), timeout=20)
    await alice.close()
    await bob.close()

    ids = Counter(dict(r.headers)["id"] for r in await gw.records(Topic.LETTERS, letter))
    assert [i for i, n in ids.items() if n > 1] == []


RESCUE = "gateway.live.rescue"


async def test_reconnects_waiting_on_an_unconfirmed_append_are_one_warning(
    held: FaultyLog,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A stalled broker left a room's append unconfirmed, and its rescue said `rescue of
    <letter>: N entries wait for an unconfirmed append` at WARNING once, then at INFO on every
    client reconnect (13 lines in 10 s, found by a reviewer). As for an append the log refuses
    (tests/gateway/test_rescue_warns_once.py), an outage is one WARNING per letter, its repeats
    DEBUG; a landing ends it, so a later failure is told again."""
    monkeypatch.setattr(rescue_module, "FIRST_RETRY_S", 60.0)  # only the reconnects attempt
    caplog.set_level(logging.DEBUG, logger=RESCUE)
    held.gate.clear()  # the broker stalls
    first = [Entry(b"one")]
    call = asyncio.ensure_future(held.append(TOPIC, KEY, first))  # the room's, timed out
    rescue, done = _rescue(
        held, [*first, Entry(b"two")], unconfirmed=UnconfirmedAppend(call, first)
    )
    for _ in range(3):  # the first reconnect and two more
        with pytest.raises(Refused):
            await rescue.ensure()
    waits = [r.levelno for r in caplog.records if "wait for an unconfirmed" in r.getMessage()]
    assert waits == [logging.WARNING, logging.DEBUG, logging.DEBUG]

    # The broker wakes (the append lands), then the log fails the rest: a new outage.
    caplog.clear()
    held.gate.set()
    await asyncio.wait([call])
    held.broken = True
    with pytest.raises(Refused):
        await rescue.ensure()
    said = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == RESCUE]
    assert [level for level, _ in said] == [logging.INFO, logging.WARNING], said
    assert "1 unconfirmed entries landed" in said[0][1]
    assert "1 entries still unlogged (attempt 1" in said[1][1]

    held.broken = False
    await rescue.ensure()
    assert done == [rescue] and await _stored(held) == [b"one", b"two"]
    assert "1 entry appended after 2 attempts" in caplog.records[-1].getMessage()
