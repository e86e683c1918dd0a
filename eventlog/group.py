"""Consumer-group membership: which partitions this instance of a consumer owns right now.

For consumers that keep their positions as data next to their state (the projector in Redis,
the snapshotter in PostgreSQL). Membership only says *which* partitions are ours; the consumer
then reads them with `Log.follow` from the positions it stored itself. Kafka's group commits are
written (`GroupMember.commit`) for lag dashboards only and never read back as positions.

Usage::

    class Listener:                       # anything with these two coroutines
        async def assigned(self, partitions: Mapping[str, frozenset[int]]) -> None:
            ...  # load stored positions for these partitions, start following them
        async def revoked(self, partitions: Mapping[str, frozenset[int]]) -> None:
            ...  # stop following them; finish (or drop) the batch in flight, then return

    async with join_group(settings, log, "projector", [letters, presence], Listener()) as member:
        ...  # run until cancelled; `await member.commit(topic, {p: next_offset})` for dashboards

Guarantees:
- `revoked` is awaited before the partitions go to another member (Kafka runs the eager
  protocol: every rebalance first revokes the whole assignment, then assigns the new one), so a
  consumer that stops writing before returning never writes concurrently with the new owner.
  Consumers should still fence their writes on the stored position (compare-and-set): a member
  that lost its session (GC pause, network) only learns it later.
- Co-partitioning: the range assignor is used, so with topics of equal partition count a member
  owns the same partition numbers in every topic (partition p of `letters` and of `presence` hold
  the same letters and always move together).
- Kafka (`settings.log_url = kafka://...`): a real group through aiokafka; any number of members.
- Embedded log: single node, no coordinator. The one member gets every partition of every topic
  at start and loses them at close. Run one instance per embedded log directory.
"""

import asyncio
import logging
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Protocol, Self

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.structs import OffsetAndMetadata

from eventlog.errors import LogError
from eventlog.factory import KAFKA_SCHEME
from eventlog.kafka_io import translated
from eventlog.records import Log
from schemas.settings import Settings

logger = logging.getLogger(__name__)

Assignment = Mapping[str, frozenset[int]]  # topic -> partition numbers owned


class RebalanceListener(Protocol):
    async def assigned(self, partitions: Assignment) -> None: ...

    async def revoked(self, partitions: Assignment) -> None: ...


class GroupMember(Protocol):
    """One membership; an async context manager (start on enter, leave the group on exit)."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def commit(self, topic: str, positions: Mapping[int, int]) -> None:
        """Publish positions (partition -> next offset) for lag dashboards; never read back."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None: ...


def join_group(
    settings: Settings,
    log: Log,
    group: str,
    topics: Sequence[str],
    listener: RebalanceListener,
    *,
    session_timeout_ms: int = 10_000,
) -> GroupMember:
    """The membership matching the configured log (see the module docstring). Kafka: a member
    silent for `session_timeout_ms` loses its partitions (heartbeats every tenth of it)."""
    url = settings.log_url
    if url is not None and url.startswith(KAFKA_SCHEME):
        bootstrap = url.removeprefix(KAFKA_SCHEME)
        return KafkaGroupMember(
            bootstrap, group, topics, listener, session_timeout_ms=session_timeout_ms
        )
    return SoleMember(log, group, topics, listener)


class _Membership:
    async def start(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


class SoleMember(_Membership):
    """The embedded log's membership: this instance owns every partition of every topic."""

    def __init__(
        self, log: Log, group: str, topics: Sequence[str], listener: RebalanceListener
    ) -> None:
        self._log, self._group, self._topics, self._listener = log, group, list(topics), listener
        self._owned: dict[str, frozenset[int]] = {}

    async def start(self) -> None:
        for topic in self._topics:
            self._owned[topic] = frozenset(range(await self._log.partition_count(topic)))
        await self._listener.assigned(dict(self._owned))

    async def close(self) -> None:
        owned, self._owned = self._owned, {}
        if owned:
            await asyncio.shield(self._listener.revoked(owned))

    async def commit(self, topic: str, positions: Mapping[int, int]) -> None:
        try:
            await self._log.commit(self._group, topic, positions)
        except LogError as exc:  # a read-only embedded log cannot record them: dashboards only
            logger.debug("group positions of %s not recorded: %s", self._group, exc)


class KafkaGroupMember(_Membership):
    """A member of a Kafka consumer group that never fetches: its partitions stay paused.

    It polls only to keep its session (max.poll.interval) and to run rebalances; the consumer
    reads the partitions with `Log.follow` from its own stored positions.
    """

    def __init__(
        self,
        bootstrap: str,
        group: str,
        topics: Sequence[str],
        listener: RebalanceListener,
        *,
        session_timeout_ms: int = 10_000,
        timeout_s: float = 10.0,
    ) -> None:
        self._group, self._topics, self._timeout_s = group, list(topics), timeout_s
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            partition_assignment_strategy=(RangePartitionAssignor,),
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=max(session_timeout_ms // 10, 100),
            rebalance_timeout_ms=60_000,
        )
        self._bridge = _Bridge(self._consumer, listener)
        self._poller: asyncio.Task[None] | None = None

    async def start(self) -> None:
        with translated(f"joining group {self._group}", self._timeout_s):
            await self._consumer.start()
            self._consumer.subscribe(self._topics, listener=self._bridge)
        self._poller = asyncio.create_task(self._poll(), name="group-member-poll")

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
        # Revoke before leaving (aiokafka's stop() does not call the listener): the next member
        # gets the partitions only after our consumer stopped writing.
        owned = self._consumer.assignment()
        if owned:
            await asyncio.shield(self._bridge.on_partitions_revoked(list(owned)))
        with translated("leaving the group", self._timeout_s):
            await self._consumer.stop()

    async def commit(self, topic: str, positions: Mapping[int, int]) -> None:
        owned = self._consumer.assignment()
        offsets = {
            tp: OffsetAndMetadata(o, "")
            for p, o in positions.items()
            if (tp := TopicPartition(topic, p)) in owned
        }
        if offsets:
            with translated(f"committing {topic}", self._timeout_s):
                await self._consumer.commit(offsets)

    async def _poll(self) -> None:
        while True:
            try:
                with translated("polling the group", self._timeout_s):
                    await self._consumer.getmany(timeout_ms=1000)
            except LogError as exc:  # the coordinator retries; keep the session alive
                logger.warning("group poll failed: %s", exc)
                await asyncio.sleep(1.0)


class _Bridge(ConsumerRebalanceListener):  # type: ignore[misc]
    """aiokafka's listener -> ours, with partitions grouped by topic and kept paused."""

    def __init__(self, consumer: AIOKafkaConsumer, listener: RebalanceListener) -> None:
        self._consumer, self._listener = consumer, listener

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        if revoked:
            await self._listener.revoked(_by_topic(revoked))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self._consumer.pause(*assigned)  # membership only: records are read with Log.follow
        if assigned:
            await self._listener.assigned(_by_topic(assigned))


def _by_topic(tps: Sequence[TopicPartition]) -> dict[str, frozenset[int]]:
    found: dict[str, set[int]] = {}
    for tp in tps:
        found.setdefault(tp.topic, set()).add(tp.partition)
    return {topic: frozenset(parts) for topic, parts in found.items()}
