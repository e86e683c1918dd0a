"""The `Log` contract, written once and run against both implementations (embedded, Kafka)."""

import asyncio
import time
import uuid

import pytest

from eventlog import Entry, Log, LogClosedError, LogError, Record
from eventlog.factory import open_log
from eventlog.partitioner import partition_for
from schemas.events import Topic
from schemas.settings import Settings
from tests.eventlog.log_contract import PARTITIONS, key_in
from tests.support import eventually


async def test_append_then_read_roundtrip_with_headers(log: Log, topic: str) -> None:
    headers = [("type", b"doc.update"), ("id", b"\x00\xff"), ("type", b"dup")]
    offsets = await log.append(topic, b"L1", [Entry(b"one", headers), Entry(b"", ())])
    partition = log.partition_for(topic, b"L1")
    records = await log.read(topic, partition, offsets[0])
    assert [r.offset for r in records] == offsets
    first, second = records
    assert (first.topic, first.partition, first.key, first.value) == (
        topic,
        partition,
        b"L1",
        b"one",
    )
    assert list(first.headers) == headers
    assert (second.value, list(second.headers)) == (b"", [])
    assert abs(first.timestamp - time.time() * 1000) < 60_000


async def test_offsets_are_dense_and_ordered_per_partition(log: Log, topic: str) -> None:
    key = key_in(log, topic, 2)
    got = [await log.append(topic, key, [Entry(b"%d" % i)]) for i in range(5)]
    got.append(await log.append(topic, key, [Entry(b"5"), Entry(b"6"), Entry(b"7")]))
    assert [o for batch in got for o in batch] == list(range(8))
    records = await log.read(topic, 2, 0)
    assert [r.value for r in records] == [b"%d" % i for i in range(8)]
    assert [r.offset for r in await log.read(topic, 2, 3, limit=2)] == [3, 4]
    assert await log.read(topic, 2, 8) == []


async def test_same_key_same_partition_as_kafka(log: Log, topic: str) -> None:
    assert await log.partition_count(topic) == PARTITIONS
    for _ in range(50):
        key = f"letter-{uuid.uuid4()}".encode()
        assert log.partition_for(topic, key) == partition_for(key, PARTITIONS)
    offsets = await log.append(topic, b"same", [Entry(b"a")])
    offsets += await log.append(topic, b"same", [Entry(b"b")])
    records = await log.read(topic, log.partition_for(topic, b"same"), 0)
    assert [(r.key, r.value) for r in records] == [(b"same", b"a"), (b"same", b"b")]


async def test_end_and_start_offsets(log: Log, topic: str) -> None:
    assert await log.end_offsets(topic) == dict.fromkeys(range(PARTITIONS), 0)
    key = key_in(log, topic, 1)
    await log.append(topic, key, [Entry(b"x")] * 3)
    await log.append(topic, key, [Entry(b"y")])
    assert await log.end_offsets(topic) == {0: 0, 1: 4, 2: 0, 3: 0}
    assert await log.start_offsets(topic) == dict.fromkeys(range(PARTITIONS), 0)


async def collect(log: Log, topic: str, positions: dict[int, int], into: list[Record]) -> None:
    async for batch in log.follow(topic, positions):
        assert len({r.partition for r in batch}) == 1
        into.extend(batch)


async def test_follow_sees_appends_made_while_it_waits(log: Log, topic: str) -> None:
    """A follower that has caught up waits; a later append wakes it (its latency is measured
    in bench/projector_lag.py, not here)."""
    seen: list[Record] = []
    follower = asyncio.create_task(collect(log, topic, dict.fromkeys(range(PARTITIONS), 0), seen))
    try:
        await log.append(topic, b"early", [Entry(b"e")])
        await eventually(lambda: len(seen) == 1, timeout=5)
        await log.append(topic, b"late", [Entry(b"l1"), Entry(b"l2")])
        await eventually(lambda: len(seen) == 3, timeout=5)
        assert [r.value for r in seen] == [b"e", b"l1", b"l2"]
    finally:
        follower.cancel()


async def test_follow_from_a_middle_offset(log: Log, topic: str) -> None:
    key = key_in(log, topic, 3)
    await log.append(topic, key, [Entry(b"%d" % i) for i in range(6)])
    seen: list[Record] = []
    follower = asyncio.create_task(collect(log, topic, {3: 4}, seen))
    try:
        await eventually(lambda: len(seen) == 2, timeout=5)
        await log.append(topic, key, [Entry(b"6")])
        await eventually(lambda: len(seen) == 3, timeout=5)
        assert [r.offset for r in seen] == [4, 5, 6]
        assert [r.value for r in seen] == [b"4", b"5", b"6"]
    finally:
        follower.cancel()


async def test_commit_and_committed_per_group(log: Log, topic: str) -> None:
    # Groups of this test's own (a broker shared by the session may still hold members of the
    # services' groups from other tests, whose rebalance refuses a commit).
    projector, snapshotter = f"projector-{topic}", f"snapshotter-{topic}"
    assert await log.committed(projector, topic) == {}
    await log.commit(projector, topic, {0: 5, 2: 7})
    await log.commit(snapshotter, topic, {0: 1})
    await log.commit(projector, topic, {0: 6})
    assert await log.committed(projector, topic) == {0: 6, 2: 7}
    assert await log.committed(snapshotter, topic) == {0: 1}


async def test_concurrent_appends_keep_per_key_order(log: Log, topic: str) -> None:
    keys = [f"letter-{n}".encode() for n in range(20)]

    async def writer(key: bytes) -> list[int]:
        offsets = []
        for i in range(10):
            offsets += await log.append(topic, key, [Entry(b"%d" % i), Entry(b"%d+" % i)])
        return offsets

    results = await asyncio.gather(*(writer(k) for k in keys))
    for offsets in results:
        assert offsets == sorted(offsets) and len(set(offsets)) == 20
    by_key: dict[bytes, list[bytes]] = {k: [] for k in keys}
    for partition in range(PARTITIONS):
        records = await log.read(topic, partition, 0, limit=10_000)
        assert [r.offset for r in records] == list(range(len(records)))
        for r in records:
            by_key[r.key].append(r.value)
    expected = [v for i in range(10) for v in (b"%d" % i, b"%d+" % i)]
    assert all(values == expected for values in by_key.values())


async def test_presence_topic_exists_with_same_partitions(log: Log, settings: Settings) -> None:
    presence = settings.topic(Topic.PRESENCE)
    assert await log.partition_count(presence) == PARTITIONS
    [offset] = await log.append(presence, b"L", [Entry(b"aw")])
    assert offset == 0


async def test_unknown_topic_or_partition_is_a_log_error(log: Log, topic: str) -> None:
    with pytest.raises(LogError):
        await log.append("nope", b"k", [Entry(b"v")])
    with pytest.raises(LogError):
        await log.read(topic, PARTITIONS, 0)


async def test_use_after_close_raises_log_closed(settings: Settings, topic: str) -> None:
    log = open_log(settings)
    await log.start()
    await log.append(topic, b"k", [Entry(b"v")])
    await log.close()
    await log.close()  # idempotent
    with pytest.raises(LogClosedError):
        await log.append(topic, b"k", [Entry(b"v")])
    with pytest.raises(LogClosedError):
        await log.read(topic, 0, 0)
    with pytest.raises(LogClosedError):
        await log.end_offsets(topic)
    with pytest.raises(LogClosedError):
        await log.committed("g", topic)


async def test_follow_in_small_batches_misses_nothing(log: Log, topic: str) -> None:
    keys = [key_in(log, topic, p) for p in range(PARTITIONS)]
    for key in keys:
        await log.append(topic, key, [Entry(b"%d" % i) for i in range(5)])
    seen: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}

    async def follow() -> None:
        async for batch in log.follow(topic, dict.fromkeys(range(PARTITIONS), 0), max_batch=2):
            assert 1 <= len(batch) <= 2
            seen[batch[0].partition].extend(r.value for r in batch)

    follower = asyncio.create_task(follow())
    try:
        for i in range(5, 10):  # appends racing the follower's reads
            await asyncio.gather(*(log.append(topic, k, [Entry(b"%d" % i)]) for k in keys))
        expected = [b"%d" % i for i in range(10)]
        await eventually(lambda: all(v == expected for v in seen.values()), timeout=10)
    finally:
        follower.cancel()


async def test_append_batch_appends_each_key_in_order_and_apart(log: Log, topic: str) -> None:
    a, b = key_in(log, topic, 1), key_in(log, topic, 3)
    results = await log.append_batch(
        topic,
        [(a, [Entry(b"a0"), Entry(b"a1")]), (b, [Entry(b"b0")]), (a, [Entry(b"a2")]), (b, [])],
    )
    assert results == [[0, 1], [0], [2], []]
    assert [r.value for r in await log.read(topic, 1, 0)] == [b"a0", b"a1", b"a2"]
    assert [r.value for r in await log.read(topic, 3, 0)] == [b"b0"]
    # One bad batch (a value that is not bytes) fails alone; the others are appended.
    bad = Entry("not bytes")  # type: ignore[arg-type]
    results = await log.append_batch(topic, [(a, [Entry(b"a3")]), (b, [bad]), (b, [Entry(b"b1")])])
    assert results[0] == [3] and isinstance(results[1], Exception) and results[2] == [1]
    assert [r.value for r in await log.read(topic, 3, 0)] == [b"b0", b"b1"]
