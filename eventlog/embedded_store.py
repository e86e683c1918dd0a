"""The embedded log's on-disk format: SQLite tables, record checksums, and the SQL both sides run.

Synchronous functions on a `sqlite3.Connection`; the writer thread and the reader thread of
`EmbeddedLog` call them. Every record row carries a CRC32 of its key, value and headers, checked
on every read, so a flipped bit is reported (file and topic/partition/offset), never returned.
"""

import fcntl
import os
import sqlite3
import struct
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from eventlog.errors import CorruptLogError, LogError, LogUnavailableError, WriterLockHeld
from eventlog.records import Headers, Record

DB_NAME = "log.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS topics (
    topic TEXT PRIMARY KEY, partitions INTEGER NOT NULL, retention_ms INTEGER
);
CREATE TABLE IF NOT EXISTS partitions (
    topic TEXT NOT NULL, partition INTEGER NOT NULL,
    start_offset INTEGER NOT NULL, next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL,
    ts INTEGER NOT NULL, crc INTEGER NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL,
    headers BLOB NOT NULL,
    PRIMARY KEY (topic, partition, offset)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS group_offsets (
    grp TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL,
    PRIMARY KEY (grp, topic, partition)
) WITHOUT ROWID;
"""

_HEADER = struct.Struct("<HI")  # name length, value length: 6 bytes
_LENGTHS = struct.Struct("<III")


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic to create at start: its partition count and retention (None = forever)."""

    partitions: int
    retention_ms: int | None = None


def encode_headers(headers: Headers) -> bytes:
    parts: list[bytes] = []
    add = parts.append  # hot path: about a third of an append's CPU time
    for name, value in headers:
        raw = name.encode()
        add(_HEADER.pack(len(raw), len(value)))
        add(raw)
        add(value)
    return b"".join(parts)


_NAMES: dict[bytes, str] = {}  # header names seen (a handful), decoded once
_NAMES_MAX = 256


def decode_headers(blob: bytes) -> list[tuple[str, bytes]]:
    # Runs once per record read (a backfill: 100k+ per second): locals, no struct.size lookup,
    # and the few distinct header names decoded once.
    headers: list[tuple[str, bytes]] = []
    pos, end, unpack, names = 0, len(blob), _HEADER.unpack_from, _NAMES
    while pos < end:
        name_len, value_len = unpack(blob, pos)
        pos += 6
        raw = blob[pos : pos + name_len]
        name = names.get(raw)
        if name is None:
            name = raw.decode()
            if len(names) < _NAMES_MAX:
                names[raw] = name
        pos += name_len
        headers.append((name, blob[pos : pos + value_len]))
        pos += value_len
    if pos != end:
        raise ValueError("header framing overruns its blob")
    return headers


def checksum(key: bytes, value: bytes, headers: bytes) -> int:
    # Lengths first so that bytes moving between fields still change the sum.
    crc = zlib.crc32(_LENGTHS.pack(len(key), len(value), len(headers)))
    return zlib.crc32(headers, zlib.crc32(value, zlib.crc32(key, crc)))


def connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    """Open the database; the writer creates it, readers require it to exist."""
    db = path / DB_NAME
    if readonly and not db.exists():
        raise LogUnavailableError(f"no embedded log at {db}")
    uri = f"file:{db}?mode={'ro' if readonly else 'rwc'}"
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 5000")
        if not readonly:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")  # fsync the WAL on every commit
            # Checkpoints run on their own thread (Checkpointer): inline ones stall commits.
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            conn.execute("PRAGMA journal_size_limit = 67108864")
            conn.executescript(_SCHEMA)
    except sqlite3.Error as exc:
        raise translate(exc, db, "open") from exc
    return conn


def translate(exc: sqlite3.Error, db: Path, position: str) -> LogError:
    """Map a SQLite error to the log's: damaged files are corruption, the rest unavailability."""
    if isinstance(exc, sqlite3.DatabaseError) and _looks_corrupt(exc):
        return CorruptLogError(str(db), position, str(exc))
    return LogUnavailableError(f"{db} ({position}): {exc}")


def _looks_corrupt(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return any(word in text for word in ("malformed", "corrupt", "not a database"))


def ensure_topics(conn: sqlite3.Connection, topics: Mapping[str, TopicSpec]) -> None:
    """Create missing topics; an existing topic keeps its partition count (keys stay put)."""
    conn.execute("BEGIN IMMEDIATE")
    for name, spec in topics.items():
        conn.execute(
            "INSERT INTO topics VALUES (?, ?, ?) ON CONFLICT (topic) DO UPDATE"
            " SET retention_ms = excluded.retention_ms",
            (name, spec.partitions, spec.retention_ms),
        )
        (count,) = conn.execute("SELECT partitions FROM topics WHERE topic=?", (name,)).fetchone()
        conn.executemany(
            "INSERT OR IGNORE INTO partitions VALUES (?, ?, 0, 0)",
            [(name, p) for p in range(count)],
        )
    conn.execute("COMMIT")


def load_topics(conn: sqlite3.Connection) -> dict[str, TopicSpec]:
    rows = conn.execute("SELECT topic, partitions, retention_ms FROM topics").fetchall()
    return {name: TopicSpec(count, retention) for name, count, retention in rows}


def offsets(conn: sqlite3.Connection, topic: str, column: str) -> dict[int, int]:
    # `column` is one of two literals chosen by our own code, never input.
    sql = f"SELECT partition, {column} FROM partitions WHERE topic=? ORDER BY partition"
    return dict(conn.execute(sql, (topic,)).fetchall())


def read_records(
    conn: sqlite3.Connection, db: Path, topic: str, partition: int, offset: int, limit: int
) -> list[Record]:
    rows = conn.execute(
        "SELECT offset, ts, crc, key, value, headers FROM records"
        " WHERE topic=? AND partition=? AND offset>=? ORDER BY offset LIMIT ?",
        (topic, partition, offset, limit),
    ).fetchall()
    return [_record(db, topic, partition, row) for row in rows]


def _record(
    db: Path, topic: str, partition: int, row: tuple[int, int, int, bytes, bytes, bytes]
) -> Record:
    offset, ts, crc, key, value, blob = row
    # The error's position is formatted only on failure: reads are a hot path.
    if checksum(key, value, blob) != crc:
        raise _corrupt(db, topic, partition, offset, "record checksum mismatch")
    try:
        headers = decode_headers(blob)
    except (ValueError, struct.error, UnicodeDecodeError) as exc:
        raise _corrupt(db, topic, partition, offset, f"bad header framing: {exc}") from exc
    return Record(topic, partition, offset, ts, key, value, headers)


def _corrupt(db: Path, topic: str, partition: int, offset: int, why: str) -> CorruptLogError:
    return CorruptLogError(str(db), f"{topic}/{partition}@{offset}", why)


def committed(conn: sqlite3.Connection, group: str, topic: str) -> dict[int, int]:
    rows = conn.execute(
        "SELECT partition, offset FROM group_offsets WHERE grp=? AND topic=?", (group, topic)
    ).fetchall()
    return dict(rows)


def store_positions(
    conn: sqlite3.Connection, group: str, topic: str, positions: Iterable[tuple[int, int]]
) -> None:
    conn.executemany(
        "INSERT INTO group_offsets VALUES (?, ?, ?, ?) ON CONFLICT (grp, topic, partition)"
        " DO UPDATE SET offset = excluded.offset",
        [(group, topic, p, o) for p, o in positions],
    )


def insert_rows(conn: sqlite3.Connection, rows: list[tuple[object, ...]]) -> None:
    conn.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)


def set_next_offsets(conn: sqlite3.Connection, topic_next: Iterable[tuple[int, str, int]]) -> None:
    conn.executemany(
        "UPDATE partitions SET next_offset=? WHERE topic=? AND partition=?", list(topic_next)
    )


def expire(conn: sqlite3.Connection, topic: str, partition: int, cutoff_ms: int) -> None:
    """Drop the partition's prefix of records older than cutoff (retention), in one transaction.

    Walks from the start in offset order and stops at the first young record, so the stored
    offsets stay one dense range and start_offset is exact.
    """
    start, end = conn.execute(
        "SELECT start_offset, next_offset FROM partitions WHERE topic=? AND partition=?",
        (topic, partition),
    ).fetchone()
    cut = start
    for offset, ts in conn.execute(
        "SELECT offset, ts FROM records WHERE topic=? AND partition=? AND offset>=?"
        " ORDER BY offset",
        (topic, partition, start),
    ):
        if ts >= cutoff_ms:
            break
        cut = offset + 1
    else:
        cut = end
    if cut > start:
        conn.execute(
            "DELETE FROM records WHERE topic=? AND partition=? AND offset<?",
            (topic, partition, cut),
        )
        conn.execute(
            "UPDATE partitions SET start_offset=? WHERE topic=? AND partition=?",
            (cut, topic, partition),
        )


def lock_writer(lock_path: Path) -> int:
    """Take the per-directory writer lock, or say which path is already being written."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise WriterLockHeld(
            f"embedded log {lock_path.parent} is already being written by another process"
            f" ({_process(holder)}); one process writes an embedded log (the gateway, or `dev`):"
            " stop that one first, or give this one another STENO_DATA_DIR"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


_SHOWN_MAX = 120  # characters of the holder's command line in a refusal


def _process(pid: str) -> str:
    """`pid N: its command line` (Linux's /proc), or the pid alone: which process to stop."""
    try:
        argv = Path(f"/proc/{int(pid)}/cmdline").read_bytes().split(b"\0")
    except (ValueError, OSError):
        return f"pid {pid}"
    # Interpreter and script by their names: `python steno-collab gateway`, not the venv's paths.
    words = [
        Path(a.decode(errors="replace")).name if i < 2 else a.decode(errors="replace")
        for i, a in enumerate(argv)
        if a
    ]
    shown = " ".join(words)
    shown = shown if len(shown) <= _SHOWN_MAX else shown[: _SHOWN_MAX - 3] + "..."
    return f"pid {pid}: {shown}" if words else f"pid {pid}"
