"""Records and the `Log` protocol both adapters implement (and one contract suite tests)."""

from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

Headers = Sequence[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class Entry:
    """A record to append: its value and headers (the key is given per append)."""

    value: bytes
    headers: Headers = ()


@dataclass(frozen=True, slots=True)
class Record:
    """A stored record, exactly Kafka's shape."""

    topic: str
    partition: int
    offset: int
    timestamp: int  # ms since the epoch, set by the log at append
    key: bytes
    value: bytes
    headers: Headers


class Log(Protocol):
    """A Kafka-style log: topics of N partitions, records keyed by letter id (murmur2)."""

    async def start(self) -> None:
        """Connect and create the configured topics when missing."""

    async def close(self) -> None:
        """Flush what was appended and release every resource."""

    def partition_for(self, topic: str, key: bytes) -> int:
        """The partition a key lands in (Kafka's default murmur2 partitioner)."""
        ...

    async def partition_count(self, topic: str) -> int: ...

    async def append(self, topic: str, key: bytes, entries: Sequence[Entry]) -> list[int]:
        """Append entries for one key, in order; return their offsets once durable.

        Raises LogUnavailableError when they cannot be made durable; then none, some or all
        may be stored, and a retry may duplicate (consumers deduplicate by event id).
        RecordTooLargeError when the log refuses one of them for good: retrying cannot help.
        """
        ...

    async def append_batch(
        self, topic: str, batches: Sequence[tuple[bytes, Sequence[Entry]]]
    ) -> list[list[int] | Exception]:
        """`append` for several keys at once (one call for a whole event-loop tick's worth):
        per batch, in order, its offsets or the exception its append raised. Each batch keeps
        `append`'s guarantees; the batches are independent (one may fail, others succeed)."""
        ...

    async def read(
        self, topic: str, partition: int, offset: int, limit: int = 1000
    ) -> list[Record]:
        """Up to `limit` records of a partition from `offset` (inclusive); [] at the end."""
        ...

    def follow(
        self, topic: str, positions: Mapping[int, int], max_batch: int = 1000
    ) -> AsyncGenerator[list[Record], None]:
        """Yield batches of new records from `positions` (partition -> next offset) onward,
        with low latency, until cancelled. Each batch is from one partition, in order. Close
        it (`contextlib.aclosing`) when done: it holds a consumer until then."""
        ...

    async def start_offsets(self, topic: str) -> dict[int, int]:
        """Partition -> first offset still stored (retention may have removed older ones)."""
        ...

    async def end_offsets(self, topic: str) -> dict[int, int]:
        """Partition -> the offset the next append will get."""
        ...

    async def end_offset(self, topic: str, partition: int) -> int:
        """The offset the next append to one partition will get (asks that partition alone)."""
        ...

    async def commit(self, group: str, topic: str, positions: Mapping[int, int]) -> None:
        """Record a consumer group's positions (partition -> next offset to read)."""
        ...

    async def committed(self, group: str, topic: str) -> dict[int, int]:
        """A group's recorded positions; partitions it never committed are absent."""
        ...
