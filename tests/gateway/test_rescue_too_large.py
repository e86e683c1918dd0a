"""A record the log refuses for good (larger than the Kafka topic takes) is dropped by the
rescue, logged and counted, and the entries around it are appended: the letter recovers. It
was retried for ever, and the letter answered 4503 until the gateway restarted."""

import logging
import random
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from eventlog.errors import LogUnavailableError
from eventlog.factory import topic_retention
from eventlog.kafka import RECORD_HEADROOM, KafkaLog
from eventlog.records import Entry
from gateway.errors import LOG_UNAVAILABLE, TOO_LARGE
from gateway.live.rescue import Rescue
from gateway.metrics import Metrics
from schemas.events import Topic
from schemas.settings import Settings
from tests.gateway.harness import Running, YClient, running_gateway, types_of
from tests.support import eventually

SMALL = 4096  # the largest value the log below is told of: it takes SMALL + RECORD_HEADROOM
DROPPED = "gateway_rescue_dropped_records_total"
OVER_LOG_LIMIT = 'gateway_refusals_total{reason="update_over_log_limit"}'


@pytest_asyncio.fixture(loop_scope="session")
async def small_log(kafka_bootstrap: str) -> AsyncIterator[tuple[KafkaLog, str]]:
    """A Kafka log (Tansu) whose producer refuses records above SMALL + RECORD_HEADROOM, as a
    topic with a smaller max.message.bytes would (Tansu does not enforce topic limits)."""
    topic = f"r{uuid.uuid4().hex[:12]}.letters"
    log = KafkaLog(kafka_bootstrap, 2, {topic: None}, idempotence=False, max_record_bytes=SMALL)
    await log.start()
    try:
        yield log, topic
    finally:
        await log.close()


async def test_a_record_refused_for_good_is_dropped_and_the_rest_appended(
    small_log: tuple[KafkaLog, str], caplog: pytest.LogCaptureFixture
) -> None:
    log, topic = small_log
    metrics = Metrics()
    done: list[Rescue] = []
    refused: list[int] = []  # sizes the gateway learns its limit from
    too_large = Entry(random.randbytes(SMALL + RECORD_HEADROOM), (("type", b"doc.update"),))
    entries = [Entry(b"first"), too_large, Entry(b"second")]
    with caplog.at_level(logging.ERROR, logger="gateway.live.rescue"):
        rescue = Rescue(
            log, topic, b"letter-1", entries, 5.0, done.append,
            metrics=metrics, on_too_large=refused.append,
        )  # fmt: skip
        await rescue.ensure()  # was Refused(4503), for ever
    assert done == [rescue] and rescue.entries == []
    partition = log.partition_for(topic, b"letter-1")
    logged = [r.value for r in await log.read(topic, partition, 0)]
    # "first" may be there twice: the failed append had sent it (consumers deduplicate).
    assert list(dict.fromkeys(logged)) == [b"first", b"second"]
    assert metrics.rescue_dropped._value.get() == 1 and refused == [len(too_large.value)]
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "letter-1" in error.message and f"{len(too_large.value)} bytes" in error.message
    assert "doc.update" in error.message


@pytest_asyncio.fixture(loop_scope="session")
async def small_gateway(
    tmp_path: Path, kafka_bootstrap: str
) -> AsyncIterator[tuple[Running, KafkaLog]]:
    """A gateway on Kafka whose log takes smaller records than a WebSocket frame may carry."""
    settings = Settings(
        data_dir=tmp_path / "steno", partitions=2, topic_prefix=f"r{uuid.uuid4().hex[:8]}.",
        log_url=f"kafka://{kafka_bootstrap}", kafka_idempotence=False,
    )  # fmt: skip
    log = KafkaLog(
        kafka_bootstrap, 2, topic_retention(settings), idempotence=False, max_record_bytes=SMALL
    )
    await log.start()
    try:
        async with running_gateway(settings, log=log) as running:
            yield running, log
    finally:
        await log.close()


async def test_the_letter_recovers_after_an_update_too_large_for_the_log(
    small_gateway: tuple[Running, KafkaLog],
) -> None:
    gw, _log = small_gateway
    letter, alice, bob = await gw.two_editors()
    await alice.insert("x" * (SMALL + RECORD_HEADROOM))  # within the frame limit, not the log's
    await alice.closed.wait()
    await bob.closed.wait()
    assert alice.close_code == bob.close_code == LOG_UNAVAILABLE  # the durability rule holds

    # The rescue drops the update and logs the rest (the sessions' ends); nobody reconnects.
    await eventually(lambda: _dropped(gw), timeout=20)
    await eventually(lambda: _count(gw, letter, "session.left", 2))  # both sessions ended

    carol = await gw.client(letter, user="carol")  # was refused with 4503 until a restart
    await carol.synced.wait()
    await carol.insert("back")
    await eventually(lambda: _logged(gw, letter, "back"))
    assert carol.close_code is None
    await carol.close()
    assert (await gw.metrics())[DROPPED] == 1


async def _dropped(gw: Running) -> bool:
    return (await gw.metrics()).get(DROPPED, 0) == 1


async def _count(gw: Running, letter: str, kind: str, n: int) -> bool:
    return types_of(await gw.records(Topic.LETTERS, letter)).count(kind) == n


async def _logged(gw: Running, letter: str, text: str) -> bool:
    return await gw.logged_text(letter) == text


async def test_an_update_the_log_refused_is_refused_with_4413_not_failing_the_letter_again(
    small_gateway: tuple[Running, KafkaLog], caplog: pytest.LogCaptureFixture
) -> None:
    """The author (and every peer) still holds the dropped update: its resync sent it again and
    failed the letter for everyone (4503), on each reconnect. The instance learned the log's
    limit from the refusal: that resync is refused alone (4413), the letter stays open."""
    gw, _log = small_gateway
    letter, alice, bob = await gw.two_editors()
    with caplog.at_level(logging.WARNING, logger="gateway.context"):
        await alice.insert("x" * (SMALL + RECORD_HEADROOM))
        await alice.closed.wait()
        await eventually(lambda: _dropped(gw), timeout=20)
    [learned] = [r for r in caplog.records if r.name == "gateway.context"]
    assert learned.levelno == logging.WARNING and "bytes" in learned.message
    carol = await gw.client(letter, user="carol")
    await carol.synced.wait()

    await bob.closed.wait()
    assert len(str(bob.text)) == SMALL + RECORD_HEADROOM  # heard as queued (the 4503 after it)
    for user, doc in (("alice", alice.doc), ("bob", bob.doc)):  # the author, and a peer
        again = await YClient.connect(gw.ws_url(letter, gw.token(user=user)), doc=doc)
        await again.closed.wait()  # its sync step 2 carries the dropped update
        assert again.close_code == TOO_LARGE
    await carol.insert("back")
    await eventually(lambda: _logged(gw, letter, "back"))
    assert carol.close_code is None  # was 4503: the resync failed the letter again
    async with httpx.AsyncClient(base_url=gw.http) as http:  # REST takes the same check
        r = await http.post(
            f"/v1/letters/{letter}/updates",
            content=alice.doc.get_update(),
            headers={"Authorization": f"Bearer {gw.token(user='alice')}"},
        )
    assert r.status_code == 413
    assert carol.close_code is None
    await carol.close()
    metrics = await gw.metrics()
    assert metrics[DROPPED] == 1  # refused before the room took it: nothing more to drop
    assert metrics[OVER_LOG_LIMIT] == 3


async def test_a_slightly_smaller_update_is_refused_too(
    small_gateway: tuple[Running, KafkaLog],
) -> None:
    """The log counts a record whole: once one of S bytes was refused, an update of S - 100
    bytes under its own headers is as large a record. It failed the letter for everyone again
    (4503): the learned limit had been S - 1."""
    gw, _log = small_gateway
    letter, alice, bob = await gw.two_editors()
    await alice.insert("x" * (SMALL + RECORD_HEADROOM))
    await alice.closed.wait()
    await eventually(lambda: _dropped(gw), timeout=20)
    carol = await gw.client(letter, user="carol")
    await carol.synced.wait()
    dave = await gw.client(letter, user="dave")
    await dave.synced.wait()
    await dave.insert("y" * (SMALL + RECORD_HEADROOM - 100))
    await dave.closed.wait()
    assert dave.close_code == TOO_LARGE
    await carol.insert("still here")
    await eventually(lambda: _logged(gw, letter, "still here"))
    assert carol.close_code is None
    await carol.close()
    await bob.closed.wait()


class _FailingCalls:
    """The log, with the appends numbered in `failing` refused as an outage would."""

    def __init__(self, inner: KafkaLog, failing: set[int]) -> None:
        self.inner, self.failing, self.calls = inner, failing, 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def append(self, topic: str, key: bytes, entries: list[Entry]) -> list[int]:
        self.calls += 1
        if self.calls in self.failing:
            raise LogUnavailableError("injected: the log is down")
        return await self.inner.append(topic, key, entries)


async def test_an_outage_around_a_dropped_record_is_warned_of_once(
    small_log: tuple[KafkaLog, str], caplog: pytest.LogCaptureFixture
) -> None:
    """The log fails, then takes the entries one by one (one too large) and fails again before
    the last: one outage, one WARNING (the partial landing reset the count: a second; re-read)."""
    log, topic = small_log
    done: list[Rescue] = []
    too_large = Entry(random.randbytes(SMALL + RECORD_HEADROOM), (("type", b"doc.update"),))
    entries = [Entry(b"first"), too_large, Entry(b"second")]
    # 1 fails; 2 (all three) too large; 3 "first"; 4 the large one, dropped; 5 "second" fails.
    flaky = _FailingCalls(log, {1, 5})
    with caplog.at_level(logging.DEBUG, logger="gateway.live.rescue"):
        Rescue(flaky, topic, b"letter-3", entries, 5.0, done.append, metrics=Metrics())  # type: ignore[arg-type]
        await eventually(lambda: done, 30)
    warned = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "still unlogged" in r.getMessage()
    ]
    assert len(warned) == 1, warned
    assert flaky.calls == 6
