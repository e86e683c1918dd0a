"""The Kafka `Log` through aiokafka: any Kafka-protocol broker (Apache Kafka, Redpanda, Tansu).

This module and `kafka_io` are the only places that import aiokafka; every aiokafka error is
translated into `eventlog.errors` here, so services never see one.
"""

import asyncio
import itertools
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import BrokerResponseError, KafkaError
from aiokafka.structs import OffsetAndMetadata, RecordMetadata

from eventlog.errors import (
    LogClosedError,
    LogConfigError,
    LogError,
    LogUnconfirmedError,
    RecordTooLargeError,
)
from eventlog.kafka_io import (
    Readers,
    acknowledged,
    create_topics,
    fetch_until,
    read_later,
    record_limits,
    to_records,
    translated,
    true_end_offsets,
)
from eventlog.kafka_quiet import OutageWatch, quiet_aiokafka, starting
from eventlog.kafka_unsent import SendWatch
from eventlog.partitioner import partition_for
from eventlog.records import Entry, Record

log = logging.getLogger(__name__)
RECORD_HEADROOM = 64 << 10  # a record's key, headers and batch framing, beside its value
READERS = 4  # consumers for one-off reads (letter loads, offsets): that many run at once
SETTLE_FACTOR = 6  # an append settles within this many ack timeouts (kafka_io.acknowledged)
UNREACHABLE_GRACE_S = 2.0  # a leader refusing connections this long is down (kafka_unsent)


class KafkaLog:
    """`Log` on Kafka topics; `topics` maps each topic to its retention in ms (None: forever)."""

    def __init__(
        self,
        bootstrap: str,
        partitions: int,
        topics: Mapping[str, int | None] | None = None,
        *,
        idempotence: bool = True,
        linger_ms: int = 2,
        replication_factor: int = 1,
        append_timeout_s: float = 10.0,
        ack_timeout_s: float | None = None,
        follow_max_wait_ms: int = 20,
        max_record_bytes: int = 1 << 20,
    ) -> None:
        """`max_record_bytes`: the largest value the log is asked to take; the producer and the
        topics it creates take that plus `RECORD_HEADROOM` (key, headers, batch framing).
        `append_timeout_s` bounds every call, and an append's handing of its records to the
        producer. Their acknowledgements are waited for as long as the producer keeps them,
        which its request timeout bounds: `ack_timeout_s` (default and least: the former). A
        broker silent for longer leaves the outcome of its request unknown for good (a stalled
        broker stores it once it wakes). Without idempotence, records a broker refusing
        connections never got are refused within `min(UNREACHABLE_GRACE_S, append_timeout_s / 2)`
        of its first refusal (kafka_unsent), not at the request timeout."""
        self._bootstrap, self._partitions = bootstrap, partitions
        self._wanted = dict(topics or {})
        self._idempotence, self._linger_ms = idempotence, min(linger_ms, 5)
        self._replication_factor = replication_factor
        self._max_request = max_record_bytes + RECORD_HEADROOM
        self._timeout_s, self._follow_wait_ms = append_timeout_s, follow_max_wait_ms
        self._ack_timeout_s = max(ack_timeout_s or append_timeout_s, append_timeout_s)
        self._counts: dict[str, int] = {}
        self._producer: AIOKafkaProducer | None = None
        self._readers = Readers(self._new_reader, READERS)
        self._groups: dict[str, AIOKafkaConsumer] = {}
        self._followers: set[AIOKafkaConsumer] = set()
        self._outage: OutageWatch | None = None
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._check_open()
        quiet_aiokafka()
        with starting():  # a failed start is one line: its error's (kafka_quiet.py)
            try:
                with translated(f"connecting to {self._bootstrap}", self._timeout_s):
                    async with asyncio.timeout(self._timeout_s):
                        await self._connect()
            except BaseException:
                await self.close()  # stop the clients that did start
                raise
        self._outage = OutageWatch(self._bootstrap, self._broker_answers)

    async def _broker_answers(self) -> bool:
        """Whether the broker answers a metadata request now (the outage watch's probe)."""
        client = self._started_producer().client
        try:
            async with asyncio.timeout(self._timeout_s):
                return bool(await client.force_metadata_update())
        except (KafkaError, LogError, OSError, TimeoutError):
            return False

    async def _connect(self) -> None:
        await create_topics(
            self._bootstrap,
            self._wanted,
            self._partitions,
            self._replication_factor,
            self._max_request,
        )
        # aiokafka's default (1 MiB) is under what a letter may hold: an update near the frame
        # limit, or a created letter's content, would be refused after peers had it.
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            acks="all",
            enable_idempotence=self._idempotence,
            linger_ms=self._linger_ms,
            request_timeout_ms=int(self._ack_timeout_s * 1000),
            max_request_size=self._max_request,
        )
        if not self._idempotence:
            # Records a down broker never got fail within the grace, not at the request timeout
            # (the callers' deadline too): a caller learns "nothing written", not "unknown".
            SendWatch(self._producer, min(UNREACHABLE_GRACE_S, self._timeout_s / 2))
        try:
            await self._started(self._producer)
        except BrokerResponseError as exc:
            # With idempotence the producer's start asks the broker for a producer id; a broker
            # without idempotent producers (Tansu) answers that with an error of its own.
            if not self._idempotence or exc.retriable:
                raise
            raise LogConfigError(
                f"Kafka: connecting to {self._bootstrap}: the broker refused an idempotent"
                f" producer ({exc!r}); for a broker without them (Tansu) set"
                " STENO_KAFKA_IDEMPOTENCE=false"
            ) from exc
        for topic in self._wanted:
            found = await self._producer.partitions_for(topic)
            self._counts[topic] = len(found)
        # A letter's records of every topic must share a partition number (DESIGN.md): topics
        # made by hand, or altered, with other counts would split letters between consumers.
        if len(set(self._counts.values())) > 1:
            raise LogError(f"Kafka: the topics' partition counts differ: {self._counts}")
        if any(count != self._partitions for count in self._counts.values()):
            log.warning(
                "Kafka topics have %s partitions, not the configured %d: the topics decide",
                sorted(set(self._counts.values())),
                self._partitions,
            )
        await self._check_record_limits()
        await self._check_placement()

    async def _check_placement(self) -> None:
        """Refuse topics whose partition count changed after records were written: a key's
        partition is its hash modulo the count, so with another count a letter's new records go
        to another partition than its history, and loads, the projector and the snapshotter
        see only part of it. A partition's first records were placed with the count of their
        time: one that its key maps elsewhere now tells the count changed (with a count doubled,
        each distinct key among the first 100 records of each partition tells with odds 1/2)."""
        # Topics kept for ever (the letters): a count change is checked for every topic alike
        # (their counts must agree, above); short-lived presence records would prove little.
        kept = [t for t, retention in self._wanted.items() if retention is None]
        starts = {t: await self.start_offsets(t) for t in kept}
        ends = {t: await self.end_offsets(t) for t in kept}
        firsts = [  # one at a time: one reader (start-up borrows no more)
            await self.read(t, p, start, 100)
            for t, found in starts.items()
            for p, start in found.items()
            if start < ends[t][p]
        ]
        moved = sorted(
            {
                r.topic
                for r in itertools.chain.from_iterable(firsts)
                if r.key and self.partition_for(r.topic, r.key) != r.partition
            }
        )
        if moved:
            raise LogError(
                f"Kafka: records of {', '.join(moved)} sit in partitions their keys do not map"
                f" to with the topics' {self._counts[moved[0]]} partitions: the partition count"
                " changed after they were written (partitions added?), which would split each"
                " letter's records between partitions. Restore the count the records were written"
                " with (README, Kafka: the count is fixed once letters exist)"
            )

    async def _check_record_limits(self) -> None:
        """Refuse topics that take smaller records than the log may be given: a record refused
        for good fails its letter (4503) and is dropped (gateway/live/rescue.py), so an operator
        learns it here rather than from lost edits (hand-made topics, a low broker default)."""
        limits = await record_limits(self._bootstrap, list(self._wanted))
        small = {t: n for t, n in limits.items() if n is not None and n < self._max_request}
        if small:
            found = ", ".join(
                f"topic {t} takes records of up to {n} bytes" for t, n in small.items()
            )
            raise LogError(
                f"Kafka: {found} (max.message.bytes), the log needs {self._max_request} (the"
                " larger of STENO_MAX_MESSAGE_BYTES and STENO_MAX_DOCUMENT_BYTES plus"
                f" {RECORD_HEADROOM}): raise max.message.bytes to at least that"
            )
        unknown = sorted(t for t, n in limits.items() if n is None)
        if unknown:
            log.warning(
                "Kafka: the broker does not tell max.message.bytes of %s: not checked; records"
                " up to %d bytes must fit",
                unknown,
                self._max_request,
            )

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._outage is not None:
            await self._outage.close()
        clients = [*self._followers, *self._groups.values(), *self._readers.made, self._producer]
        # At once, not one after another: on a stalled broker each stop waits for its client's
        # request in flight (a group's coordinator lookup: up to two request timeouts; the
        # producer: its records' outcome), and in turn they added up (18 s for a gateway).
        stops = [asyncio.ensure_future(self._stop(c)) for c in clients if c is not None]
        if not stops:
            return
        bound_s = self._ack_timeout_s + self._timeout_s  # what those requests take, at most
        _, pending = await asyncio.wait(stops, timeout=bound_s)
        if pending:  # an idempotent producer retries until the broker answers: shutdown ends
            log.warning("%d Kafka clients did not stop within %ss: left", len(pending), bound_s)
            for stop in pending:
                stop.cancel()
            await asyncio.wait(pending)

    async def _stop(self, client: AIOKafkaProducer | AIOKafkaConsumer) -> None:
        try:
            with translated("closing", self._timeout_s):
                await stopped(client)
        except LogError as exc:  # closing the rest matters more than this one's error
            log.warning("closing a Kafka client failed: %s", exc)

    # -- the Log protocol --------------------------------------------------------------------

    def partition_for(self, topic: str, key: bytes) -> int:
        return partition_for(key, self._count(topic))

    async def partition_count(self, topic: str) -> int:
        return self._count(topic)

    async def append(self, topic: str, key: bytes, entries: Sequence[Entry]) -> list[int]:
        """Hand `entries` to the producer (within `append_timeout_s`: a record not handed
        over is not sent), then wait for their true outcome, not for a deadline of ours: given
        up on, records the producer holds would be stored all the same once a stalled broker
        wakes, and a caller appending them again would store them twice."""
        producer = self._started_producer()
        partition = self.partition_for(topic, key)
        what = f"appending to {topic}/{partition}"
        bound_s = SETTLE_FACTOR * self._ack_timeout_s
        acks: list[asyncio.Future[RecordMetadata]] = []
        try:
            with translated(what, self._timeout_s):
                async with asyncio.timeout(self._timeout_s):
                    for e in entries:
                        ack = await producer.send(
                            topic, e.value, key=key, partition=partition, headers=list(e.headers)
                        )
                        acks.append(ack)
        except asyncio.CancelledError:
            read_later(acks)  # those handed over go out all the same; their errors are read
            raise
        except LogError as exc:
            if not acks or isinstance(exc, RecordTooLargeError):
                # A record refused for good: the caller must drop it, whatever became of those
                # before it (its rescue appends them one by one: gateway/live/rescue.py).
                read_later(acks)
                raise
            # Those handed over go out all the same: if any is stored, so is part of `entries`.
            if not await self._none_stored(acks, what, bound_s):
                raise LogUnconfirmedError(
                    f"Kafka: {what}: {len(acks)} of {len(entries)} records sent, the rest not"
                    f" handed over ({exc})"
                ) from exc
            raise  # the refusal stands
        return await acknowledged(acks, what, bound_s)

    @staticmethod
    async def _none_stored(
        acks: list["asyncio.Future[RecordMetadata]"], what: str, bound_s: float
    ) -> bool:
        try:
            await acknowledged(acks, what, bound_s)
        except LogUnconfirmedError:
            return False
        except LogError:
            return True
        return False

    async def append_batch(
        self, topic: str, batches: Sequence[tuple[bytes, Sequence[Entry]]]
    ) -> list[list[int] | Exception]:
        # The producer batches the sends of all keys per partition and broker by itself.
        results = await asyncio.gather(
            *(self.append(topic, key, entries) for key, entries in batches),
            return_exceptions=True,
        )
        out: list[list[int] | Exception] = []
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, Exception):
                raise result  # cancellation and the like are not an append's outcome
            out.append(result)
        return out

    async def read(
        self, topic: str, partition: int, offset: int, limit: int = 1000
    ) -> list[Record]:
        tp = self._tp(topic, partition)
        async with self._reader() as reader:
            with translated(f"reading {topic}/{partition}", self._timeout_s):
                listed = await reader.end_offsets([tp])
                if offset >= listed[tp]:  # maybe the end: make sure (see true_end_offsets)
                    ends = await true_end_offsets(reader, [tp], self._timeout_s, listed)
                    if offset >= ends[tp]:
                        return []
                reader.assign([tp])
                reader.seek(tp, offset)
                found = await fetch_until(reader, tp, self._timeout_s, limit)
        return to_records(found)[:limit]

    async def follow(
        self, topic: str, positions: Mapping[int, int], max_batch: int = 1000
    ) -> AsyncGenerator[list[Record], None]:
        tps = {self._tp(topic, p): o for p, o in positions.items()}
        consumer = self._consumer(None, fetch_max_wait_ms=self._follow_wait_ms)
        self._followers.add(consumer)
        try:
            with translated(f"following {topic}", self._timeout_s):
                await self._started(consumer)
                consumer.assign(list(tps))
                for tp, offset in tps.items():
                    consumer.seek(tp, offset)
            while True:
                with translated(f"following {topic}", self._timeout_s, closed=self._is_closed):
                    found = await consumer.getmany(timeout_ms=1000, max_records=max_batch)
                for messages in found.values():
                    yield to_records(messages)
        finally:
            self._followers.discard(consumer)
            await stopped(consumer)  # at once if close() stopped it: its stop is idempotent

    async def start_offsets(self, topic: str) -> dict[int, int]:
        tps = [self._tp(topic, p) for p in range(self._count(topic))]
        async with self._reader() as reader:
            with translated(f"listing offsets of {topic}", self._timeout_s):
                found = await reader.beginning_offsets(tps)
        return {tp.partition: offset for tp, offset in found.items()}

    async def end_offsets(self, topic: str) -> dict[int, int]:
        tps = [self._tp(topic, p) for p in range(self._count(topic))]
        async with self._reader() as reader:
            with translated(f"listing offsets of {topic}", self._timeout_s):
                found = await self._true_end(reader, tps)
        return {tp.partition: offset for tp, offset in found.items()}

    async def end_offset(self, topic: str, partition: int) -> int:
        tp = self._tp(topic, partition)
        async with self._reader() as reader:
            with translated(f"listing the end of {topic}/{partition}", self._timeout_s):
                found = await self._true_end(reader, [tp])
        return found[tp]

    async def commit(self, group: str, topic: str, positions: Mapping[int, int]) -> None:
        consumer = await self._group(group)
        offsets = {self._tp(topic, p): OffsetAndMetadata(o, "") for p, o in positions.items()}
        # Bounded here: aiokafka's commit waits for a coordinator however long that takes,
        # and one in flight when the log closes on a stalled broker never returned.
        with translated(f"committing {group} on {topic}", self._timeout_s):
            async with asyncio.timeout(self._timeout_s):
                await consumer.commit(offsets)

    async def committed(self, group: str, topic: str) -> dict[int, int]:
        consumer = await self._group(group)
        found: dict[int, int] = {}
        with translated(f"fetching {group} positions on {topic}", self._timeout_s):
            async with asyncio.timeout(self._timeout_s):  # the whole call, as commit's
                for partition in range(self._count(topic)):
                    offset = await consumer.committed(self._tp(topic, partition))
                    if offset is not None and offset >= 0:
                        found[partition] = offset
        return found

    # -- internals ---------------------------------------------------------------------------

    async def _true_end(
        self, reader: AIOKafkaConsumer, tps: list[TopicPartition]
    ) -> dict[TopicPartition, int]:
        return await true_end_offsets(reader, tps, self._timeout_s)

    async def _group(self, group: str) -> AIOKafkaConsumer:
        """A paused consumer of the group, assigned every topic: it only commits and fetches
        committed offsets (group offsets without joining the group: no rebalances)."""
        self._check_open()
        if group not in self._groups:
            consumer = self._consumer(group)
            with translated(f"joining {group}", self._timeout_s):
                await self._started(consumer)
                tps = [self._tp(t, p) for t, n in self._counts.items() for p in range(n)]
                consumer.assign(tps)
                consumer.pause(*tps)
            self._groups[group] = consumer
        return self._groups[group]

    def _consumer(self, group: str | None, fetch_max_wait_ms: int = 50) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=fetch_max_wait_ms,
            request_timeout_ms=int(self._timeout_s * 1000) + fetch_max_wait_ms,
        )

    async def _started(self, client: AIOKafkaProducer | AIOKafkaConsumer) -> None:
        # Never cancelled half-way: aiokafka 0.14 opens its bootstrap connection in a local of
        # AIOKafkaClient.bootstrap, which a cancellation there leaves open for good (no stop()
        # reaches it; it surfaced as "Unclosed AIOKafkaConnection" in unrelated tests). A
        # cancelled caller waits for the start to end (bounded by the request timeout), then
        # stops what it opened.
        starting = asyncio.ensure_future(client.start())
        try:
            await asyncio.shield(starting)
        except BaseException:
            await asyncio.gather(starting, return_exceptions=True)
            await asyncio.sleep(0)  # see below: the consumer's coordinator must have run once
            await stopped(client)  # a half-started client still owns sockets and tasks
            raise
        # Let the client's background tasks begin: aiokafka's consumer cannot be stopped
        # cleanly before its coordinator task has run once (it re-raises the cancellation).
        await asyncio.sleep(0)

    def _started_producer(self) -> AIOKafkaProducer:
        self._check_open()
        if self._producer is None:
            raise LogError("KafkaLog.start() was not awaited")
        return self._producer

    @asynccontextmanager
    async def _reader(self) -> AsyncIterator[AIOKafkaConsumer]:
        """A reader of the pool for this read alone."""
        self._started_producer()  # started and not closed
        async with self._readers.borrowed() as reader:
            yield reader

    async def _new_reader(self) -> AIOKafkaConsumer:
        reader = self._consumer(None)
        with translated("starting a reader", self._timeout_s):
            await self._started(reader)
        if self._closed:  # close() ran meanwhile and could not see it
            await stopped(reader)
            self._check_open()
        return reader

    def _count(self, topic: str) -> int:
        self._check_open()
        try:
            return self._counts[topic]
        except KeyError:
            raise LogError(f"unknown topic {topic!r} on {self._bootstrap}") from None

    def _tp(self, topic: str, partition: int) -> TopicPartition:
        if not 0 <= partition < self._count(topic):
            raise LogError(f"{topic} has no partition {partition}")
        return TopicPartition(topic, partition)

    def _is_closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise LogClosedError(f"Kafka log on {self._bootstrap} is closed")


async def stopped(client: AIOKafkaProducer | AIOKafkaConsumer) -> None:
    """`client.stop()`, its connections and metadata task closed whatever the stop raised.

    aiokafka 0.14's consumer stop marks itself stopped, then re-raises the cancellation of a
    fetch it cancelled in its retry back-off (a broker down) or of a coordinator task that never
    ran (aio-libs/aiokafka#647), before it closes its AIOKafkaClient: left open, that client
    retries the broker for good, an ERROR every 30 s. Such a cancellation is swallowed here; the
    caller's own is raised, also one aiokafka's closing swallowed (its `suppress(CancelledError)`
    around its own tasks' ends)."""
    task = asyncio.current_task()
    # A caller already cancelled (stopping a client in its `finally`) goes on closing: only a
    # cancellation that came while this ran is raised here.
    before = task.cancelling() if task is not None else 0
    try:
        await client.stop()
    except asyncio.CancelledError:
        if task is not None and task.cancelling() > before:
            raise
        log.debug("a Kafka client's stop raised a cancellation of its own tasks")
    finally:
        inner = client.client if isinstance(client, AIOKafkaProducer) else client._client
        await inner.close()  # idempotent
    if task is not None and task.cancelling() > before:
        raise asyncio.CancelledError
