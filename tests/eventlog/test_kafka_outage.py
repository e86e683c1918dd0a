"""A broker that refuses connections (stopped, its port closed) and `KafkaLog`: an append it never
got is refused ("nothing written": 503) before its caller's deadline, not left "unconfirmed"
(504) until the producer's request timeout; and the outage shows in a bounded number of lines,
not aiokafka's 50-100 errors a second per process."""

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from eventlog.errors import LogUnavailableError, LogUnconfirmedError
from eventlog.kafka import KafkaLog
from eventlog.kafka_quiet import Repeats, kind_of
from eventlog.records import Entry
from gateway.live.confirmed import append_confirmed
from steno_collab.processes import Supervised
from tests.conftest import start_tansu
from tests.interop.tcp_proxy import Proxy
from tests.support import eventually, free_port

TIMEOUT_S = 2.0  # the log's append timeout: its callers' deadline


@pytest.fixture
async def proxied(tmp_path: Path) -> AsyncIterator[tuple[str, Proxy]]:
    """A broker behind a proxy the test may close (as a stopped broker: no connection)."""
    proxy = await Proxy().start()
    port = free_port()
    proxy.target = port
    proc: Supervised | None = None
    try:
        proc, bootstrap = await start_tansu(tmp_path / "tansu.log", port, advertised=proxy.port)
        yield bootstrap, proxy
    finally:
        await proxy.stop()
        if proc is not None:
            await proc.stop(timeout=5)


async def _started(bootstrap: str) -> tuple[KafkaLog, str]:
    topic = f"o{uuid.uuid4().hex[:8]}.letters"
    log = KafkaLog(bootstrap, 1, {topic: None}, idempotence=False, append_timeout_s=TIMEOUT_S)
    await log.start()
    return log, topic


def _down(proxy: Proxy, log: KafkaLog) -> Any:
    """Close the broker; the producer's connection is noticed dead (a request written on it
    before would be a send, maybe taken, not what these tests are about)."""
    proxy.target = None
    for link in list(proxy._links):
        link.abort()
    client: Any = log._producer.client  # type: ignore[union-attr]
    return eventually(lambda: not any(c.connected() for c in client._conns.values()))


async def test_an_append_the_broker_never_got_is_refused_before_the_deadline(
    proxied: tuple[str, Proxy],
) -> None:
    bootstrap, proxy = proxied
    log, topic = await _started(bootstrap)
    try:
        assert await log.append(topic, b"k", [Entry(b"zero")]) == [0]  # connected first
        target = proxy.target
        await _down(proxy, log)
        began = time.monotonic()
        # As the gateway appends a REST write: Unconfirmed is its 504, a LogError its 503.
        entries = [Entry(b"one"), Entry(b"two")]
        with pytest.raises(LogUnavailableError) as caught:
            await append_confirmed(log, topic, b"k", entries, TIMEOUT_S)
        assert not isinstance(caught.value, LogUnconfirmedError)
        assert time.monotonic() - began < TIMEOUT_S * 0.9  # fast, not at the deadline
        # Once the broker is back: nothing of the refused append was stored, and appends work.
        proxy.target = target
        assert await eventually(lambda: _appended(log, topic, b"three"), timeout=10) == [1]
        assert [r.value for r in await log.read(topic, 0, 0)] == [b"zero", b"three"]
    finally:
        await log.close()


async def _appended(log: KafkaLog, topic: str, value: bytes) -> list[int] | None:
    try:
        return await log.append(topic, b"k", [Entry(value)])
    except LogUnavailableError:
        return None


async def test_an_outage_logs_a_bounded_number_of_lines(
    proxied: tuple[str, Proxy], caplog: pytest.LogCaptureFixture
) -> None:
    """Every client of the log (a follower here, the producer, the readers) retries about every
    100 ms and aiokafka logs an ERROR each time: ~50 lines a second for this one log."""
    bootstrap, proxy = proxied
    log, topic = await _started(bootstrap)
    follower = log.follow(topic, {0: 0})
    following = asyncio.ensure_future(anext(follower))
    try:
        assert await log.append(topic, b"k", [Entry(b"zero")]) == [0]
        assert [r.value for r in await following] == [b"zero"]
        following = asyncio.ensure_future(anext(follower))  # it fetches through the outage
        caplog.set_level(logging.INFO)
        caplog.clear()
        target = proxy.target
        await _down(proxy, log)
        await eventually(lambda: _said(caplog, "unreachable since"), timeout=10)
        outage_end = time.monotonic() + 3
        while time.monotonic() < outage_end:  # appends during the outage: each is refused
            with pytest.raises(LogUnavailableError):
                await log.append(topic, b"k", [Entry(b"lost")])
        proxy.target = target
        await eventually(lambda: _said(caplog, "reachable again"), timeout=10)
        aiokafka = [r for r in caplog.records if r.name.startswith("aiokafka")]
        # The first of each kind, then one per kind and repeat window (none within 3 s).
        kinds = {kind_of(r) for r in aiokafka}
        assert len(aiokafka) == len(kinds) <= 12, [r.getMessage() for r in aiokafka]
        ours = [r.getMessage() for r in caplog.records if r.name == "eventlog.kafka_quiet"]
        assert len(ours) == 2, ours  # one when it went, one when it came back
    finally:
        following.cancel()
        await asyncio.gather(following, return_exceptions=True)
        await follower.aclose()
        await log.close()


def _said(caplog: pytest.LogCaptureFixture, words: str) -> bool:
    return any(words in r.getMessage() for r in caplog.records)


def test_one_template_with_another_error_is_shown_at_once() -> None:
    """Repeats of one kind are dropped; another error in the same template (an authorisation
    or size refusal after connection errors) is not hidden behind them."""
    repeats = Repeats()

    def record(message: str, *args: object) -> logging.LogRecord:
        return logging.LogRecord(
            "aiokafka.producer.sender", logging.ERROR, "f", 1, message, args, None
        )

    shown = [
        repeats.filter(record("Got error produce response: %s", error))
        for error in [
            "KafkaConnectionError: Connection at 127.0.0.1:38643 closed",
            "KafkaConnectionError: Connection at 127.0.0.1:38644 closed",  # the same kind
            "TopicAuthorizationFailedError",
            "MessageSizeTooLargeError",
        ]
    ]
    assert shown == [True, False, True, True]
