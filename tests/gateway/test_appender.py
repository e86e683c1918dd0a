"""Appends batched across letters (gateway/live/appender.py), against the real embedded log:
one `append_batch` per round, each letter in order, a failure costs only its own letter; what
waits counts towards the intake (gateway/live/intake.py) until it is appended or handed back."""

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest_asyncio

from eventlog.errors import LogUnavailableError
from eventlog.factory import open_log
from eventlog.records import Entry, Log
from gateway.live.appender import Batcher
from gateway.live.intake import ENTRY_OVERHEAD, Intake
from gateway.metrics import Metrics
from schemas.events import Topic
from schemas.settings import Settings


class Counting:
    """The real log, counting append_batch calls; keys in `failing` get an error back."""

    def __init__(self, inner: Log) -> None:
        self.inner, self.calls, self.failing = inner, 0, set[bytes]()
        self.garbled = False  # answer with one result too few, as a buggy adapter might
        self.gate = asyncio.Event()  # cleared: rounds wait here
        self.gate.set()
        self.entered = asyncio.Event()  # a round reached the log

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def append_batch(
        self, topic: str, batches: Sequence[tuple[bytes, Sequence[Entry]]]
    ) -> list[list[int] | Exception]:
        self.calls += 1
        self.entered.set()
        await self.gate.wait()
        ok = [(key, entries) for key, entries in batches if key not in self.failing]
        done = iter(await self.inner.append_batch(topic, ok))
        error = LogUnavailableError("injected")
        results = [error if key in self.failing else next(done) for key, _ in batches]
        return results[:-1] if self.garbled else results


@pytest_asyncio.fixture(loop_scope="session")
async def log(tmp_path: Path) -> AsyncIterator[Counting]:
    real = open_log(Settings(data_dir=tmp_path, partitions=2))
    await real.start()
    yield Counting(real)
    await real.close()


async def test_one_round_for_many_letters_each_in_order(log: Counting) -> None:
    topic = Settings().topic(Topic.LETTERS)
    batcher = Batcher(log, topic, Metrics(), timeout_s=10)
    keys = [f"L{i}".encode() for i in range(20)]
    appenders = [batcher.appender(key, lambda *_: None) for key in keys]
    acked: list[tuple[bytes, int]] = []

    def ack(key: bytes, n: int) -> Callable[[], None]:
        return lambda: acked.append((key, n))

    for n in range(3):
        for key, appender in zip(keys, appenders, strict=True):
            appender.put(Entry(b"%d" % n), ack(key, n))
    await asyncio.gather(*(a.flush() for a in appenders))
    assert log.calls == 1  # 60 entries of 20 letters queued in one tick: one call
    assert [n for key, n in acked if key == b"L7"] == [0, 1, 2]
    for key in keys:
        partition = log.partition_for(topic, key)
        records = [r for r in await log.read(topic, partition, 0) if r.key == key]
        assert [r.value for r in records] == [b"0", b"1", b"2"]
    await batcher.close()


async def test_a_linger_gathers_entries_of_several_ticks(log: Counting) -> None:
    topic = Settings().topic(Topic.LETTERS)
    batcher = Batcher(log, topic, Metrics(), timeout_s=10, linger_s=0.5)
    appenders = [batcher.appender(f"T{i}".encode(), lambda *_: None) for i in range(3)]
    acked: list[int] = []
    for n, appender in enumerate(appenders):  # one per event-loop tick, within the linger
        appender.put(Entry(b"%d" % n), functools.partial(acked.append, n))
        await asyncio.sleep(0)
    assert log.calls == 0 and acked == []  # still lingering: nothing appended, nothing acked
    await asyncio.gather(*(a.flush() for a in appenders))
    assert log.calls == 1 and acked == [0, 1, 2]
    await batcher.close()


async def test_a_backlog_waits_only_for_the_rest_of_its_linger(log: Counting) -> None:
    """As Kafka's `linger.ms`: counted from the oldest entry waiting, not from the last append."""
    topic = Settings().topic(Topic.LETTERS)
    linger = 0.6
    batcher = Batcher(log, topic, Metrics(), timeout_s=10, linger_s=linger)
    appender = batcher.appender(b"B", lambda *_: None)
    log.gate.clear()
    appender.put(Entry(b"1"))
    await log.entered.wait()  # the first round (after its linger) is in flight
    log.entered.clear()
    appender.put(Entry(b"2"))
    queued = time.monotonic()
    log.gate.set()  # the first round completes at once: "2" still lingers
    await appender.flush()
    assert time.monotonic() - queued >= linger and log.calls == 2
    # Entries that waited through a slow append have lingered already: they go at once.
    log.gate.clear()
    log.entered.clear()
    appender.put(Entry(b"3"))
    await log.entered.wait()
    appender.put(Entry(b"4"))
    await asyncio.sleep(linger)  # the append takes longer than the linger
    log.gate.set()
    async with asyncio.timeout(linger - 0.1):  # no second linger
        await appender.flush()
    assert log.calls == 4
    await batcher.close()


async def test_a_round_the_log_answers_wrongly_fails_its_letters_not_the_batcher(
    log: Counting,
) -> None:
    """A bug in a log adapter (results that do not match the request) costs that round's
    letters a 4503, not every later append of the instance."""
    topic = Settings().topic(Topic.LETTERS)
    batcher = Batcher(log, topic, Metrics(), timeout_s=10)
    failed: dict[bytes, list[bytes]] = {}

    def on_failure(key: bytes) -> Callable[[BaseException, Sequence[Entry]], None]:
        return lambda exc, unlogged: failed.__setitem__(key, [e.value for e in unlogged])

    keys = (b"W1", b"W2")
    appenders = [batcher.appender(key, on_failure(key)) for key in keys]
    log.garbled = True
    for key, appender in zip(keys, appenders, strict=True):
        appender.put(Entry(key + b"-1"))
    async with asyncio.timeout(10):
        await asyncio.gather(*(a.flush() for a in appenders))
    assert failed == {b"W1": [b"W1-1"], b"W2": [b"W2-1"]}  # handed back: the rescue appends them
    log.garbled = False
    acked: list[bytes] = []
    later = batcher.appender(b"W3", on_failure(b"W3"))
    later.put(Entry(b"W3-1"), lambda: acked.append(b"W3-1"))
    async with asyncio.timeout(10):  # the batcher's task still runs
        await later.flush()
    assert acked == [b"W3-1"] and b"W3" not in failed
    await batcher.close()


async def test_a_failed_letter_loses_nothing_and_costs_others_nothing(log: Counting) -> None:
    topic = Settings().topic(Topic.LETTERS)
    batcher = Batcher(log, topic, Metrics(), timeout_s=10)
    failed: list[list[bytes]] = []
    good = batcher.appender(b"good", lambda *_: None)
    bad = batcher.appender(b"bad", lambda exc, unlogged: failed.append([e.value for e in unlogged]))
    log.failing.add(b"bad")
    acked: list[bytes] = []
    bad.put(Entry(b"b1"))
    good.put(Entry(b"g1"), lambda: acked.append(b"g1"))
    await asyncio.gather(good.flush(), bad.flush())
    # Queued behind the failed one while it was in flight: handed back too, in order.
    bad.put(Entry(b"b2"))  # after the failure: refused, nothing queued
    good.put(Entry(b"g2"), lambda: acked.append(b"g2"))
    await good.flush()
    assert failed == [[b"b1"]] and bad.failed and not good.failed
    assert acked == [b"g1", b"g2"]
    await batcher.close()


async def test_entries_queued_behind_a_failing_round_are_handed_back(log: Counting) -> None:
    topic = Settings().topic(Topic.LETTERS)
    batcher = Batcher(log, topic, Metrics(), timeout_s=10)
    failed: list[list[bytes]] = []
    bad = batcher.appender(
        b"bad2", lambda exc, unlogged: failed.append([e.value for e in unlogged])
    )
    log.failing.add(b"bad2")
    log.gate.clear()
    bad.put(Entry(b"1"))
    await log.entered.wait()  # the round with "1" is in flight
    bad.put(Entry(b"2"))
    bad.put(Entry(b"3"))
    log.gate.set()
    await bad.flush()
    assert failed == [[b"1", b"2", b"3"]]  # everything not known to be appended, in order
    await batcher.close()


async def test_a_failing_callback_costs_nothing_else(log: Counting) -> None:
    topic = Settings().topic(Topic.LETTERS)
    batcher = Batcher(log, topic, Metrics(), timeout_s=10)
    first, second = (
        batcher.appender(b"c1", lambda *_: None),
        batcher.appender(b"c2", lambda *_: None),
    )
    acked: list[str] = []

    def broken() -> None:
        raise RuntimeError("a peer's echo blew up")

    first.put(Entry(b"x"), broken)
    first.put(Entry(b"y"), lambda: acked.append("c1 y"))
    second.put(Entry(b"z"), lambda: acked.append("c2 z"))
    await asyncio.gather(first.flush(), second.flush())
    second.put(Entry(b"w"), lambda: acked.append("c2 w"))  # the next round still runs
    await second.flush()
    assert acked == ["c1 y", "c2 z", "c2 w"]
    await batcher.close()


async def test_a_sender_is_held_while_too_much_waits_for_the_log(log: Counting) -> None:
    topic = Settings().topic(Topic.LETTERS)
    metrics = Metrics()
    intake = Intake(limit_bytes=4 * ENTRY_OVERHEAD, metrics=metrics)
    batcher = Batcher(log, topic, metrics, timeout_s=10, intake=intake)
    good = batcher.appender(b"i-good", lambda *_: None)
    bad = batcher.appender(b"i-bad", lambda *_: None)
    log.failing.add(b"i-bad")
    log.gate.clear()
    for n in range(4):  # exactly the limit: not full
        (bad if n == 0 else good).put(Entry(b""))
    assert not intake.full and intake.unlogged == 4 * ENTRY_OVERHEAD
    good.put(Entry(b"12345"))  # over it
    assert intake.full
    first: list[bool] = []  # what two connections that send now are told, in order
    second: list[bool] = []
    for conn in (first, second, first):  # each is held once, however often it sends
        intake.hold(conn.append)
    assert first == [True] and second == [True]
    assert metrics.registry.get_sample_value("gateway_intake_held") == 2
    log.gate.set()  # the log takes them, the failed letter's entry included (handed back)
    await asyncio.gather(good.flush(), bad.flush())
    assert first == [True, False] and second == [True, False] and not intake.full
    assert intake.unlogged == 0 and bad.failed
    assert metrics.registry.get_sample_value("gateway_intake_held") == 0
    assert metrics.registry.get_sample_value("gateway_intake_pauses_total") == 1
    assert metrics.registry.get_sample_value("gateway_unlogged_bytes") == 0
    await batcher.close()


async def test_a_flush_waits_for_what_was_queued_before_it_not_after(log: Counting) -> None:
    """Under steady typing the letter's queue is never empty: each round is appended with the
    next entry already queued behind it. A flush (a named version, a comment: they follow the
    edits accepted before them) waited for an empty queue, so it waited out its deadline."""
    batcher = Batcher(log, Settings().topic(Topic.LETTERS), Metrics(), timeout_s=10)
    appender = batcher.appender(b"L", lambda *_: None)

    async def next_round() -> None:  # the round at the gate goes; the next one waits there
        log.entered.clear()
        log.gate.set()
        log.gate.clear()
        await log.entered.wait()

    log.gate.clear()
    appender.put(Entry(b"1"))
    await log.entered.wait()  # round 1 ("1") at the log
    appender.put(Entry(b"2"))
    flush = asyncio.ensure_future(appender.flush())  # for "1" and "2"
    await next_round()  # round 1 appended; round 2 ("2") at the log
    appender.put(Entry(b"3"))  # typed meanwhile
    await next_round()  # round 2 appended; round 3 ("3") at the log
    try:
        # Before: not done while "3" was pending (and so on for as long as the typing lasted).
        await asyncio.wait_for(flush, timeout=5)
    finally:
        log.gate.set()
    await appender.flush()
    await batcher.close()
