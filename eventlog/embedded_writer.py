"""The embedded log's single writer thread: group commit of every queued append and commit.

Callers on the event loop enqueue requests; the thread takes everything queued, writes it in ONE
SQLite transaction (one fsync), then resolves all the callers' futures with a single loop
callback. That is what makes many small concurrent appends cheap.
"""

import asyncio
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from eventlog import embedded_store as store
from eventlog.errors import LogError, LogUnavailableError
from eventlog.records import Entry

log = logging.getLogger(__name__)

# Bounds one transaction so a flood of appends still gets acknowledged in slices.
MAX_REQUESTS_PER_TRANSACTION = 4096


@dataclass(slots=True)
class AppendRequest:
    topic: str
    partition: int
    key: bytes
    entries: Sequence[Entry]
    future: "asyncio.Future[list[int]]"


@dataclass(slots=True)
class CommitRequest:
    group: str
    topic: str
    positions: Mapping[int, int]
    future: "asyncio.Future[list[int]]"


Request = AppendRequest | CommitRequest
Outcome = tuple["asyncio.Future[list[int]]", list[int] | BaseException]
Slot = tuple[str, int]  # (topic, partition)


class Writer:
    """Owns the read-write connection; started and stopped by `EmbeddedLog`."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        db: Path,
        loop: asyncio.AbstractEventLoop,
        on_commit: Callable[[list[Outcome], set[Slot]], None],
        clock: Callable[[], int],
        sweep_interval_s: float,
    ) -> None:
        self._conn, self._db, self._loop = conn, db, loop
        self._on_commit, self._clock = on_commit, clock
        self._sweep_interval_s = sweep_interval_s
        self._queue: queue.SimpleQueue[Request | None] = queue.SimpleQueue()
        self._next = {
            (topic, p): o
            for topic in store.load_topics(conn)
            for p, o in store.offsets(conn, topic, "next_offset").items()
        }
        self._last_sweep = 0
        # Record times never go back, whatever the wall clock does (an NTP step): a point-in-time
        # replay cuts the log at the first record stamped after the instant.
        self._stamped = 0
        self._thread = threading.Thread(target=self._run, name="eventlog-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, request: Request) -> None:
        self._queue.put(request)

    def stop(self) -> None:
        """Finish what is queued, then close the connection (blocking: call from a thread)."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        try:
            while self._serve_once():
                pass
        finally:
            self._conn.close()

    def _serve_once(self) -> bool:
        try:
            # Idle wake-ups drive retention even when nobody appends.
            first = self._queue.get(timeout=max(self._sweep_interval_s, 0.05))
        except queue.Empty:
            self._sweep()
            return True
        batch = [first]
        while len(batch) < MAX_REQUESTS_PER_TRANSACTION:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        requests = [r for r in batch if r is not None]
        if requests:
            try:
                outcomes, touched = self._write(requests)
            except Exception as exc:  # our bug: fail these callers, keep serving the rest
                log.exception("embedded log writer failed")
                error = LogUnavailableError(f"embedded log {self._db} writer failed: {exc!r}")
                outcomes, touched = [(r.future, error) for r in requests], set()
            self._loop.call_soon_threadsafe(self._on_commit, outcomes, touched)
            self._sweep()
        return None not in batch

    def _write(self, requests: list[Request]) -> tuple[list[Outcome], set[Slot]]:
        now = self._stamped = max(self._clock(), self._stamped)
        touched: dict[Slot, int] = {}
        rows: list[tuple[object, ...]] = []
        outcomes: list[Outcome] = []
        accepted: list[Request] = []
        for req in requests:
            try:
                result = self._rows_for(req, now, touched, rows)
            except Exception as exc:  # bad input (say, str for bytes) fails its caller only
                outcomes.append((req.future, exc))
                continue
            accepted.append(req)
            outcomes.append((req.future, result))
        try:
            self._transaction(accepted, rows, touched)
        except sqlite3.Error as exc:
            error = store.translate(exc, self._db, "append")
            log.error("embedded log write failed: %s", error)
            return [(future, error) for future, _ in outcomes], set()
        self._next.update(touched)
        return outcomes, set(touched)

    def _rows_for(
        self, req: Request, now: int, touched: dict[Slot, int], rows: list[tuple[object, ...]]
    ) -> list[int]:
        if isinstance(req, CommitRequest):
            return []
        slot = (req.topic, req.partition)
        first = offset = touched.get(slot, self._next[slot])
        mine = []
        for entry in req.entries:
            blob = store.encode_headers(entry.headers)
            crc = store.checksum(req.key, entry.value, blob)
            mine.append((req.topic, req.partition, offset, now, crc, req.key, entry.value, blob))
            offset += 1
        rows += mine  # only once every entry encoded: a failing request leaves no rows behind
        touched[slot] = offset
        return list(range(first, offset))

    def _transaction(
        self,
        requests: list[Request],
        rows: list[tuple[object, ...]],
        touched: dict[tuple[str, int], int],
    ) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            store.insert_rows(conn, rows)
            store.set_next_offsets(conn, [(o, t, p) for (t, p), o in touched.items()])
            for req in requests:
                if isinstance(req, CommitRequest):
                    store.store_positions(conn, req.group, req.topic, req.positions.items())
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _sweep(self) -> None:
        """Apply retention (presence: 24 h) at most once per sweep interval."""
        now = self._clock()
        if now - self._last_sweep < self._sweep_interval_s * 1000:
            return
        self._last_sweep = now
        try:
            for topic, spec in store.load_topics(self._conn).items():
                if spec.retention_ms is not None and spec.retention_ms >= 0:
                    self._expire_topic(topic, spec.partitions, now - spec.retention_ms)
        except (sqlite3.Error, LogError) as exc:
            log.warning("embedded log retention sweep failed: %s", exc)

    def _expire_topic(self, topic: str, partitions: int, cutoff_ms: int) -> None:
        for partition in range(partitions):
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                store.expire(self._conn, topic, partition, cutoff_ms)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise


class Checkpointer:
    """Copies the WAL into the database file off the commit path, on its own connection.

    SQLite's automatic checkpoint runs inside the committing transaction and fsyncs the whole
    database file, which put 5-10 ms stalls into single-append latency; a PASSIVE checkpoint
    from another connection runs beside the writer instead.
    """

    def __init__(self, path: Path, interval_s: float = 0.5) -> None:
        self._conn = store.connect(path, readonly=False)
        self._interval_s = interval_s
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="eventlog-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            while not self._stopping.wait(self._interval_s):
                try:
                    self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as exc:  # retried next interval; the WAL keeps the data
                    log.warning("embedded log checkpoint failed: %s", exc)
        finally:
            self._conn.close()
