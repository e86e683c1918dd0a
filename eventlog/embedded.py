"""The embedded log: a durable single-node `Log` on SQLite (WAL, synchronous=FULL) on local disk.

One writer process per log directory (an exclusive file lock says so, naming the path); any
number of read-only processes (CLI tools) may read and follow it while the server writes.
Appends are group-committed by one writer thread (`embedded_writer`); reads run on one reader
thread with its own connection, so the event loop never waits on the disk.
"""

import asyncio
import logging
import os
import sqlite3
import time
from collections import defaultdict
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from eventlog import embedded_store as store
from eventlog.embedded_recovery import check_wal
from eventlog.embedded_store import TopicSpec
from eventlog.embedded_writer import (
    AppendRequest,
    Checkpointer,
    CommitRequest,
    Outcome,
    Slot,
    Writer,
)
from eventlog.errors import LogClosedError, LogError
from eventlog.partitioner import partition_for
from eventlog.records import Entry, Record

T = TypeVar("T")
log = logging.getLogger(__name__)
LOCK_NAME = "writer.lock"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class EmbeddedLog:
    """`Log` on a directory holding `log.sqlite3` (plus its WAL) and `writer.lock`."""

    def __init__(
        self,
        path: Path,
        partitions: int,
        topics: Mapping[str, int | None] | None = None,
        *,
        readonly: bool = False,
        poll_interval_s: float = 0.025,
        sweep_interval_s: float = 60.0,
        checkpoint_interval_s: float = 0.5,
        clock: Callable[[], int] = _now_ms,
    ) -> None:
        """`topics` maps each topic to create to its retention in ms (None: kept forever)."""
        self.path, self.readonly = Path(path), readonly
        self.db = self.path / store.DB_NAME
        self._partitions = partitions
        self._wanted = {t: TopicSpec(partitions, r) for t, r in (topics or {}).items()}
        self._poll_interval_s, self._sweep_interval_s = poll_interval_s, sweep_interval_s
        self._checkpoint_interval_s = checkpoint_interval_s
        self._clock = clock
        self._topics: dict[str, TopicSpec] = {}
        self._reader: ThreadPoolExecutor | None = None
        self._reader_conn: sqlite3.Connection | None = None
        self._writer: Writer | None = None
        self._checkpointer: Checkpointer | None = None
        self._lock_fd: int | None = None
        # Commits per (topic, partition) made by this process, and an epoch bumped when another
        # process changed the file: followers compare them to know which partitions to read.
        self._versions: dict[Slot, int] = defaultdict(int)
        self._epoch = 0
        self._changed = asyncio.Event()
        self._poller: asyncio.Task[None] | None = None
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._check_open()
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="eventlog-reader")
        try:
            await self._open()
        except BaseException:
            await self.close()  # release the lock, threads and connections opened so far
            raise

    async def _open(self) -> None:
        if not self.readonly:
            self.path.mkdir(parents=True, exist_ok=True)
            self._lock_fd = store.lock_writer(self.path / LOCK_NAME)
            await self._on_reader(lambda: check_wal(self.db))  # before SQLite recovers it
            conn = await self._on_reader(lambda: store.connect(self.path, readonly=False))
            await self._on_reader(lambda: store.ensure_topics(conn, self._wanted))
            self._writer = Writer(
                conn,
                self.db,
                asyncio.get_running_loop(),
                self._committed_batch,
                self._clock,
                self._sweep_interval_s,
            )
            self._writer.start()
            self._checkpointer = await self._on_reader(
                lambda: Checkpointer(self.path, self._checkpoint_interval_s)
            )
            self._checkpointer.start()
        self._reader_conn = await self._on_reader(lambda: store.connect(self.path, readonly=True))
        await self.refresh_topics()
        kept = {self._topics[t].partitions for t in self._wanted if t in self._topics}
        if kept and kept != {self._partitions}:  # as the Kafka adapter says it
            log.warning(
                "the embedded log's topics have %s partitions, not the configured %d: the"
                " topics decide (a letter's partition is its key's hash modulo their count)",
                sorted(kept),
                self._partitions,
            )

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._notify(None)  # wake followers so they see the close
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.wait([self._poller])
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.stop)
        if self._reader is not None:
            conn = self._reader_conn
            if conn is not None:
                await asyncio.wrap_future(self._reader.submit(conn.close))
            self._reader.shutdown(wait=True)
        if self._writer is not None:
            # Closed last: the last connection to close checkpoints the WAL into the file.
            await asyncio.to_thread(self._writer.stop)
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock

    async def refresh_topics(self) -> None:
        """Reload topic metadata (a read-only reader opened before the writer created them)."""
        self._topics = await self._read(store.load_topics)

    # -- the Log protocol --------------------------------------------------------------------

    def partition_for(self, topic: str, key: bytes) -> int:
        return partition_for(key, self._spec(topic).partitions)

    async def partition_count(self, topic: str) -> int:
        return self._spec(topic).partitions

    async def append(self, topic: str, key: bytes, entries: Sequence[Entry]) -> list[int]:
        writer = self._require_writer()
        partition = self.partition_for(topic, key)
        if not entries:
            return []
        future: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        writer.submit(AppendRequest(topic, partition, bytes(key), entries, future))
        return await future

    async def append_batch(
        self, topic: str, batches: Sequence[tuple[bytes, Sequence[Entry]]]
    ) -> list[list[int] | Exception]:
        # Submitted together, so the writer usually takes them into one transaction; one
        # future per batch keeps their outcomes apart (a bad request fails only its caller).
        writer = self._require_writer()
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[list[int]]] = []
        for key, entries in batches:
            future: asyncio.Future[list[int]] = loop.create_future()
            futures.append(future)
            if not entries:
                future.set_result([])
                continue
            partition = self.partition_for(topic, key)
            writer.submit(AppendRequest(topic, partition, bytes(key), entries, future))
        results = await asyncio.gather(*futures, return_exceptions=True)
        return [r if not isinstance(r, BaseException) else _as_exception(r) for r in results]

    async def read(
        self, topic: str, partition: int, offset: int, limit: int = 1000
    ) -> list[Record]:
        self._check_partition(topic, partition)
        return await self._read(
            lambda c: store.read_records(c, self.db, topic, partition, offset, limit)
        )

    async def follow(
        self, topic: str, positions: Mapping[int, int], max_batch: int = 1000
    ) -> AsyncGenerator[list[Record], None]:
        for partition in positions:
            self._check_partition(topic, partition)
        todo = dict(positions)
        dirty, epoch, seen = set(todo), -1, dict.fromkeys(todo, -1)
        while True:
            self._check_open()
            # Taken together, before reading: a commit after this sets `changed` and bumps a
            # version, so it is neither slept through nor lost.
            changed, now = self._changed, {p: self._versions[topic, p] for p in todo}
            if epoch != self._epoch:
                dirty, epoch = set(todo), self._epoch
            dirty |= {p for p in todo if now[p] != seen[p]}
            seen = now
            for partition in sorted(dirty):
                batch = await self.read(topic, partition, todo[partition], max_batch)
                if batch:
                    todo[partition] = batch[-1].offset + 1
                    yield batch
                if len(batch) < max_batch:
                    dirty.discard(partition)
            if not dirty:
                await self._wait_for_change(changed)

    async def start_offsets(self, topic: str) -> dict[int, int]:
        self._spec(topic)
        return await self._read(lambda c: store.offsets(c, topic, "start_offset"))

    async def end_offsets(self, topic: str) -> dict[int, int]:
        self._spec(topic)
        return await self._read(lambda c: store.offsets(c, topic, "next_offset"))

    async def end_offset(self, topic: str, partition: int) -> int:
        self._check_partition(topic, partition)
        return (await self.end_offsets(topic)).get(partition, 0)

    async def commit(self, group: str, topic: str, positions: Mapping[int, int]) -> None:
        writer = self._require_writer()
        for partition in positions:
            self._check_partition(topic, partition)
        future: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        writer.submit(CommitRequest(group, topic, dict(positions), future))
        await future

    async def committed(self, group: str, topic: str) -> dict[int, int]:
        self._spec(topic)
        return await self._read(lambda c: store.committed(c, group, topic))

    # -- internals ---------------------------------------------------------------------------

    def _committed_batch(self, outcomes: list[Outcome], touched: set[Slot]) -> None:
        """Runs on the loop after each writer transaction: resolve callers, wake followers."""
        for future, result in outcomes:
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
        if touched:
            self._notify(touched)

    def _notify(self, touched: set[Slot] | None) -> None:
        if touched is None:
            self._epoch += 1
        else:
            for slot in touched:
                self._versions[slot] += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait_for_change(self, changed: asyncio.Event) -> None:
        if self._writer is None and self._poller is None:
            # No writer in this process: another process writes; watch the file cheaply.
            self._poller = asyncio.create_task(self._poll_data_version())
        await changed.wait()

    async def _poll_data_version(self) -> None:
        seen: int | None = None
        while not self._closed:
            try:
                current: int | None = await self._read(_data_version)
            except LogClosedError:
                return
            except LogError as exc:  # wake the followers: their own reads report the error
                log.warning("embedded log %s: watching for changes failed: %s", self.db, exc)
                current = None
            if current != seen or current is None:
                seen = current
                self._notify(None)  # which partitions changed is unknown: all
            await asyncio.sleep(self._poll_interval_s)

    async def _read(self, query: Callable[[sqlite3.Connection], T]) -> T:
        self._check_open()
        conn = self._reader_conn
        assert conn is not None, "start() not awaited"  # programming error, not input
        try:
            return await self._on_reader(lambda: query(conn))
        except sqlite3.Error as exc:
            raise store.translate(exc, self.db, "read") from exc

    async def _on_reader(self, call: Callable[[], T]) -> T:
        assert self._reader is not None, "start() not awaited"
        return await asyncio.wrap_future(self._reader.submit(call))

    def _require_writer(self) -> Writer:
        self._check_open()
        if self._writer is None:
            raise LogError(f"{self.path} is opened read-only")
        return self._writer

    def _spec(self, topic: str) -> TopicSpec:
        self._check_open()
        try:
            return self._topics[topic]
        except KeyError:
            raise LogError(f"unknown topic {topic!r} in {self.db}") from None

    def _check_partition(self, topic: str, partition: int) -> None:
        if not 0 <= partition < self._spec(topic).partitions:
            raise LogError(f"{topic} has no partition {partition}")

    def _check_open(self) -> None:
        if self._closed:
            raise LogClosedError(f"embedded log {self.path} is closed")


def _data_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA data_version").fetchone()[0])


def _as_exception(error: BaseException) -> Exception:
    # The writer resolves futures with Exceptions only; anything else is a bug worth a stop.
    if isinstance(error, Exception):
        return error
    raise error
