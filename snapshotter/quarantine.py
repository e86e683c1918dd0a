"""Poison records: a record whose fold raises is retried, then skipped and recorded.

Bad input the fold understands (undecodable, oversized, an update pycrdt refuses with an
error) is skipped by `fold` itself. This is the net under it: anything else a record raises,
pyo3's PanicException (a BaseException) included, aborts the batch; the snapshotter resumes
from its stored positions (so no half-folded state survives) and folds again. After
`MAX_ATTEMPTS` failures of the same record it is skipped and a `quarantine` row (migration
002) records its topic/partition/offset, so one bad record never wedges a partition.
"""

from collections import Counter
from collections.abc import Sequence

import asyncpg

from eventlog.records import Record
from schemas.quarantine import MAX_ATTEMPTS, PASSTHROUGH, QuarantinedRecord
from snapshotter import pgtext

__all__ = ["MAX_ATTEMPTS", "PASSTHROUGH", "PoisonRecord", "Quarantine", "write"]
CONSUMER = "snapshotter"
Position = tuple[str, int, int]


class PoisonRecord(Exception):
    """Folding the record at `position` raised; the batch must be folded again from scratch."""

    def __init__(self, position: Position, attempts: int, cause: BaseException) -> None:
        super().__init__(f"record {position} failed {attempts}x: {cause!r}")
        self.position, self.attempts = position, attempts


class Quarantine:
    """Failure counts per record position (kept across resumes) and the records to skip."""

    def __init__(self, max_attempts: int = MAX_ATTEMPTS) -> None:
        self.max_attempts = max_attempts
        self._failures: Counter[Position] = Counter()
        self._errors: dict[Position, str] = {}

    def skips(self, record: Record) -> bool:
        # Asked of every record: no failures, no lookup (a Counter's miss runs Python code).
        failures = self._failures
        return bool(failures) and failures.get(_position(record), 0) >= self.max_attempts

    def failed(self, record: Record, exc: BaseException) -> PoisonRecord:
        position = _position(record)
        self._failures[position] += 1
        self._errors[position] = repr(exc)[:500]
        return PoisonRecord(position, self._failures[position], exc)

    def row(self, record: Record) -> QuarantinedRecord:
        position = _position(record)
        headers = dict(record.headers)
        return QuarantinedRecord(
            *position,
            letter_id=record.key.decode(errors="replace"),
            event_type=headers.get("type", b"").decode(errors="replace"),
            error=self._errors.get(position, ""),
            attempts=self._failures[position],
        )


def _position(record: Record) -> Position:
    return (record.topic, record.partition, record.offset)


async def write(pool: asyncpg.Pool, rows: Sequence[QuarantinedRecord]) -> None:
    """Idempotent: a batch folded again after a failed commit writes the same rows."""
    await pool.executemany(
        "INSERT INTO quarantine (consumer, log_topic, log_partition, log_offset, letter_id,"
        " event_type, error, attempts) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT DO NOTHING",
        pgtext.rows(
            (
                CONSUMER,
                r.topic,
                r.partition,
                r.offset,
                r.letter_id,
                r.event_type,
                r.error,
                r.attempts,
            )
            for r in rows
        ),
    )
