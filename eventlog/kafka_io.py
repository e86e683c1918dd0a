"""aiokafka plumbing for `KafkaLog`: error translation, topic creation, fetch helpers.

Kept apart from `kafka` so the adapter reads as the `Log` protocol and nothing else.
"""

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import ConsumerStoppedError, KafkaError
from aiokafka.structs import ConsumerRecord

from eventlog.errors import LogClosedError, LogError, LogUnavailableError
from eventlog.records import Record

TOPIC_ALREADY_EXISTS = 36  # Kafka protocol error code


@contextmanager
def translated(
    what: str, timeout_s: float, closed: Callable[[], bool] | None = None
) -> Iterator[None]:
    """Turn every aiokafka/network error into the log's own: services never import aiokafka."""
    try:
        yield
    except LogError:
        raise
    except (KafkaError, ConsumerStoppedError, OSError, TimeoutError) as exc:
        if closed is not None and closed():
            raise LogClosedError(f"Kafka log closed while {what}") from exc
        if isinstance(exc, TimeoutError):
            raise LogUnavailableError(f"Kafka: {what}: no answer within {timeout_s}s") from exc
        raise LogUnavailableError(f"Kafka: {what}: {exc!r}") from exc


def topic_configs(retention_ms: int | None, max_message_bytes: int) -> dict[str, str]:
    # Never compacted: compaction would keep only the last record of each letter. Records as
    # large as the producer sends (the broker's own default is 1 MiB).
    retention = "-1" if retention_ms is None else str(retention_ms)
    # The broker stamps each record as it appends it (a record's time is "set by the log at
    # append"): gateways' clocks differ, and a point-in-time replay needs times that follow
    # the offsets of a partition.
    return {
        "retention.ms": retention,
        "cleanup.policy": "delete",
        "max.message.bytes": str(max_message_bytes),
        "message.timestamp.type": "LogAppendTime",
    }


async def create_topics(
    bootstrap: str,
    topics: Mapping[str, int | None],
    partitions: int,
    replication_factor: int,
    max_message_bytes: int,
) -> None:
    """Create the missing topics; existing ones are left as they are (their partition count
    decides where keys go, and changing it would move letters between partitions)."""
    if not topics:
        return
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        new = [
            NewTopic(
                name,
                partitions,
                replication_factor,
                topic_configs=topic_configs(retention, max_message_bytes),
            )
            for name, retention in topics.items()
        ]
        response = await admin.create_topics(new)
    finally:
        await admin.close()
    for topic, code, message in response.topic_errors:
        if code not in (0, TOPIC_ALREADY_EXISTS):
            raise LogUnavailableError(f"Kafka: creating topic {topic}: error {code} {message}")


async def fetch_until(
    consumer: AIOKafkaConsumer, tp: TopicPartition, timeout_s: float, limit: int
) -> list[ConsumerRecord[bytes, bytes]]:
    """The next records of `tp` from its current position; waits until some arrive."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = await consumer.getmany(tp, timeout_ms=100, max_records=limit)
        records: list[ConsumerRecord[bytes, bytes]] = found.get(tp, [])
        if records:
            return records
    raise TimeoutError


async def true_end_offsets(
    consumer: AIOKafkaConsumer,
    tps: Sequence[TopicPartition],
    timeout_s: float,
    listed: Mapping[TopicPartition, int] | None = None,
) -> dict[TopicPartition, int]:
    """End offsets, correct even on brokers that list the last batch's base offset + 1.

    Tansu answers ListOffsets(latest) with (base offset of the last batch) + 1, which is wrong
    whenever that batch holds several records; re-reading the last listed record's batch gives
    its true last offset. On Apache Kafka this costs one small fetch per non-empty partition.
    """
    if listed is None:
        listed = await consumer.end_offsets(list(tps))
    probe = {tp: o - 1 for tp, o in listed.items() if o > 0}
    if not probe:
        return dict(listed)
    consumer.assign(list(probe))
    for tp, offset in probe.items():
        consumer.seek(tp, offset)
    ends = dict(listed)
    deadline = time.monotonic() + timeout_s
    while probe and time.monotonic() < deadline:
        found = await consumer.getmany(*probe, timeout_ms=100)
        for tp, messages in found.items():
            if messages:
                ends[tp] = max(ends[tp], messages[-1].offset + 1)
                probe.pop(tp, None)
    if probe:
        raise TimeoutError
    return ends


def to_records(messages: Sequence[ConsumerRecord[bytes, bytes]]) -> list[Record]:
    return [
        Record(
            m.topic,
            m.partition,
            m.offset,
            m.timestamp,
            m.key or b"",
            m.value or b"",
            list(m.headers),
        )
        for m in messages
    ]
