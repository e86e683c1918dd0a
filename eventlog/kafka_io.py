"""aiokafka plumbing for `KafkaLog`: error translation, topics, readers, fetch helpers.

Kept apart from `kafka` so the adapter reads as the `Log` protocol and nothing else.
"""

import asyncio
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager, contextmanager

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import (
    BrokerResponseError,
    ConsumerStoppedError,
    IncompatibleBrokerVersion,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NodeNotReadyError,
    ProducerClosed,
    RequestTimedOutError,
    UnsupportedVersionError,
)
from aiokafka.structs import ConsumerRecord, RecordMetadata

from eventlog.errors import (
    LogClosedError,
    LogError,
    LogUnavailableError,
    LogUnconfirmedError,
    RecordTooLargeError,
)
from eventlog.kafka_unsent import Unreachable, UnreachableAfterSending
from eventlog.records import Record

TOPIC_ALREADY_EXISTS = 36  # Kafka protocol error code
MAX_MESSAGE_BYTES = "max.message.bytes"


@contextmanager
def translated(
    what: str, timeout_s: float, closed: Callable[[], bool] | None = None
) -> Iterator[None]:
    """Turn every aiokafka/network error into the log's own: services never import aiokafka."""
    try:
        yield
    except LogError:
        raise
    except MessageSizeTooLargeError as exc:
        # The producer's own max_request_size, or the broker's MESSAGE_TOO_LARGE (code 10, the
        # topic's max.message.bytes): the same record fails again however often it is sent.
        raise RecordTooLargeError(
            f"Kafka: {what}: a record is larger than it takes: {exc}"
        ) from exc
    except (KafkaError, ConsumerStoppedError, OSError, TimeoutError) as exc:
        if closed is not None and closed():
            raise LogClosedError(f"Kafka log closed while {what}") from exc
        if isinstance(exc, TimeoutError):
            raise LogUnavailableError(f"Kafka: {what}: no answer within {timeout_s}s") from exc
        raise LogUnavailableError(f"Kafka: {what}: {exc!r}") from exc


async def acknowledged(
    acks: Sequence["asyncio.Future[RecordMetadata]"], what: str, bound_s: float
) -> list[int]:
    """The offsets of records handed to the producer, once it has resolved each of them.

    Never cancelled, nor given up on at a deadline of ours while the producer still holds a
    record: cancelling takes nothing back from a broker, which stores a request it received once
    it wakes. Without idempotence aiokafka 0.14 resolves each record within a few request
    timeouts by itself: a batch expires `request_timeout_ms` after it was made and is failed at
    its next failed attempt (NodeNotReadyError: a connection that did not come up, nothing
    sent; sooner, Unreachable, once the leader has refused for a while: kafka_unsent), and a
    request sent and unanswered fails after `request_timeout_ms`
    (RequestTimedOutError). With idempotence it retries until the broker answers (the broker
    drops repeats): `bound_s` is for that case and for surprises; past it, LogUnconfirmedError.
    A refusal the log answered (or a record never sent) is LogUnavailableError or
    RecordTooLargeError; a record sent and unanswered, or some stored and some not,
    LogUnconfirmedError."""
    # Each record's error is read: below, or (given up on, cancelled) by a callback, so no
    # "exception was never retrieved"; a callback per record only then, off the usual path.
    try:
        _, pending = await asyncio.wait(acks, timeout=bound_s) if acks else (set(), set())
    except asyncio.CancelledError:
        read_later(acks)
        raise
    if pending:
        read_later(acks)
        raise LogUnconfirmedError(f"Kafka: {what}: the producer did not settle in {bound_s}s")
    failed = [exc for exc in (ack.exception() for ack in acks) if exc is not None]
    if not failed:
        return [ack.result().offset for ack in acks]
    unknown = [exc for exc in failed if not refused(exc)]
    if unknown or len(failed) < len(acks):
        cause = unknown[0] if unknown else failed[0]
        raise LogUnconfirmedError(
            f"Kafka: {what}: {len(acks) - len(failed)} of {len(acks)} records confirmed, the"
            f" rest not ({cause!r}): the log may store them yet"
        ) from cause
    with translated(what, bound_s):
        raise failed[0]


def refused(exc: BaseException) -> bool:
    """Whether the producer's error for a record says it was not stored: never sent (no
    connection, no leader, the producer closed, its buffer full) or answered with an error. A
    request the broker did not answer (RequestTimedOutError, KafkaConnectionError with the
    request in flight) may be stored yet, and so may what the sender failed for reasons of its
    own. Only the last attempt's error reaches us: without idempotence `SendWatch`
    (kafka_unsent) tells a batch an earlier attempt may have sent (UnreachableAfterSending) from
    one never sent (Unreachable, NodeNotReadyError); with idempotence a batch is retried until
    the broker answers."""
    if isinstance(exc, (RequestTimedOutError, UnreachableAfterSending)):
        return False  # RequestTimedOutError: the broker's own code 7 too (acks=all waited)
    return isinstance(
        exc, (NodeNotReadyError, KafkaTimeoutError, ProducerClosed, Unreachable)
    ) or isinstance(exc, BrokerResponseError)


def read_later(acks: Sequence["asyncio.Future[RecordMetadata]"]) -> None:
    """Read each record's outcome once it comes, for records nobody will wait for."""
    for ack in acks:
        ack.add_done_callback(_retrieved)


def _retrieved(ack: "asyncio.Future[RecordMetadata]") -> None:
    if not ack.cancelled():
        ack.exception()  # read: no "exception was never retrieved" for an append given up on


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
        MAX_MESSAGE_BYTES: str(max_message_bytes),
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
    new = [
        NewTopic(
            name,
            partitions,
            replication_factor,
            topic_configs=topic_configs(retention, max_message_bytes),
        )
        for name, retention in topics.items()
    ]
    async with _admin(bootstrap) as admin:
        response = await admin.create_topics(new)
    for topic, code, message in response.topic_errors:
        if code not in (0, TOPIC_ALREADY_EXISTS):
            raise LogUnavailableError(f"Kafka: creating topic {topic}: error {code} {message}")


async def record_limits(bootstrap: str, topics: Collection[str]) -> dict[str, int | None]:
    """Each topic's effective `max.message.bytes` (its own, else the broker's
    `message.max.bytes`); None where the broker does not say: Tansu lists only the configs a
    topic was created with, and a broker without DescribeConfigs says nothing."""
    found: dict[str, int | None] = dict.fromkeys(topics)
    if not topics:
        return found
    # Every config, not the one named: Tansu cannot decode a DescribeConfigs naming configs
    # (it drops the connection).
    wanted = [ConfigResource(ConfigResourceType.TOPIC, t) for t in topics]
    async with _admin(bootstrap) as admin:
        try:
            responses = await admin.describe_configs(wanted)
        except (UnsupportedVersionError, IncompatibleBrokerVersion):
            return found
    for response in responses:
        for code, _message, _type, name, entries in response.resources:
            values = {entry[0]: entry[1] for entry in entries}
            if code == 0 and name in found and values.get(MAX_MESSAGE_BYTES) is not None:
                found[name] = int(values[MAX_MESSAGE_BYTES])
    return found


@asynccontextmanager
async def _admin(bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


class Readers:
    """Up to `size` consumers for one-off reads, each used by one read at a time (a read
    assigns and seeks its consumer), made when first needed: reads of different partitions
    (letter loads after a reconnect storm) do not wait for each other."""

    def __init__(self, make: Callable[[], Awaitable[AIOKafkaConsumer]], size: int) -> None:
        self._make = make
        self._slots = asyncio.Semaphore(size)
        self._idle: list[AIOKafkaConsumer] = []
        self.made: list[AIOKafkaConsumer] = []  # every reader, busy or idle: close() stops them

    @asynccontextmanager
    async def borrowed(self) -> AsyncIterator[AIOKafkaConsumer]:
        async with self._slots:
            if self._idle:
                reader = self._idle.pop()
            else:
                reader = await self._make()
                self.made.append(reader)
            try:
                yield reader
            finally:
                # Paused while idle: an assigned reader's fetcher keeps pulling and buffering
                # the partitions' new records for nobody. Not unassigned: a consumer left
                # with no topic asks the cluster for every topic's metadata. The next read
                # assigns (unpaused) and seeks it again.
                reader.pause(*reader.assignment())
                self._idle.append(reader)


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
