"""A consistent copy of the embedded log while it runs, checked record by record.

The log is the record (Redis and PostgreSQL are rebuilt from it), so it is what to back up. A
file copy of a SQLite database in WAL mode can catch the database file and its WAL at different
moments and be torn. SQLite's online backup copies the pages under one read transaction: a
snapshot as of one commit, while the writer goes on appending (WAL readers do not block it).

The copy is then read back whole: every record's checksum, and every partition's records
against its offsets in the copy (`start_offset` up to `next_offset`, no gap, none beyond).
Restoring is putting `log.sqlite3` back in an empty `<data dir>/log` with the service stopped
(README, Operations).
"""

import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from eventlog import embedded_store as store
from eventlog.errors import CorruptLogError, LogUnavailableError

PAGE = 5000


@dataclass
class BackupReport:
    path: Path  # the copy's database file
    bytes: int = 0
    seconds: float = 0.0
    records: dict[str, int] = field(default_factory=dict)  # by topic
    next_offsets: dict[str, dict[int, int]] = field(default_factory=dict)  # by topic, partition


def backup(log_dir: Path, to: Path) -> BackupReport:
    """Copy the log in `log_dir` to `to/log.sqlite3` (`to` must be missing or empty), check it."""
    started = time.monotonic()
    if to.exists() and any(to.iterdir()):
        raise LogUnavailableError(f"{to} is not empty: a backup goes to a new folder")
    source = store.connect(log_dir, readonly=True)  # LogUnavailableError when there is no log
    to.mkdir(parents=True, exist_ok=True)
    target_db = to / store.DB_NAME
    target = sqlite3.connect(target_db, isolation_level=None)
    try:
        source.backup(target)  # all pages in one step: one read transaction, one snapshot
        target.execute("PRAGMA journal_mode = DELETE")  # one file to carry; WAL again on open
    except sqlite3.Error as exc:
        raise store.translate(exc, log_dir / store.DB_NAME, "backup") from exc
    finally:
        source.close()
        target.close()
    report = check(to)
    report.bytes = target_db.stat().st_size
    report.seconds = time.monotonic() - started
    return report


def check(log_dir: Path) -> BackupReport:
    """Read every record of the log in `log_dir` (checksums checked) against its offsets."""
    db = log_dir / store.DB_NAME
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, isolation_level=None)
    report = BackupReport(db)
    try:
        verdict = conn.execute("PRAGMA integrity_check").fetchone()[0]
        if verdict != "ok":
            raise CorruptLogError(str(db), "integrity_check", verdict)
        for topic in sorted(store.load_topics(conn)):
            starts = store.offsets(conn, topic, "start_offset")
            ends = store.offsets(conn, topic, "next_offset")
            report.next_offsets[topic] = ends
            report.records[topic] = 0
            for partition, end in ends.items():
                offset = starts.get(partition, 0)
                while offset < end:
                    batch = store.read_records(conn, db, topic, partition, offset, PAGE)
                    batch = batch[: end - offset]  # what lies past the end is reported below
                    for record in batch:
                        if record.offset != offset:
                            why = f"records missing before offset {record.offset}"
                            raise CorruptLogError(str(db), f"{topic}/{partition}@{offset}", why)
                        offset += 1
                    if not batch:
                        why = f"records end at {offset}, the partition at {end}"
                        raise CorruptLogError(str(db), f"{topic}/{partition}@{offset}", why)
                    report.records[topic] += len(batch)
                last = _last_offset(conn, topic, partition)
                if last is not None and last >= end:  # appended but never made visible
                    why = f"records go on to {last}, past the partition's end {end}"
                    raise CorruptLogError(str(db), f"{topic}/{partition}@{end}", why)
    except sqlite3.Error as exc:
        raise store.translate(exc, db, "check") from exc
    finally:
        conn.close()
    return report


def _last_offset(conn: sqlite3.Connection, topic: str, partition: int) -> int | None:
    query = "SELECT MAX(offset) FROM records WHERE topic = ? AND partition = ?"
    last: int | None = conn.execute(query, (topic, partition)).fetchone()[0]
    return last
