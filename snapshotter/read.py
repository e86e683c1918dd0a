"""Read API over the snapshotter's tables, for tools (replay, history, diff) and operators.

Plain queries on an asyncpg pool or connection; they never write. Times are UTC datetimes.
"""

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg

MAX_VERSION = 2**31 - 1  # letter_version.version_number is an int

Json = dict[str, Any]


class Database(Protocol):
    """An asyncpg pool or connection."""

    async def fetch(self, query: str, *args: Any) -> list[Any]: ...

    async def fetchrow(self, query: str, *args: Any) -> Any: ...


@dataclass(frozen=True, slots=True)
class Version:
    letter_id: str
    version_number: int
    content: str
    document: Json
    ydoc_state: bytes
    log_topic: str
    log_partition: int
    log_offset: int  # next offset folded in: the log after this version starts here
    change_data: Json
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: str
    letter_id: str
    user_id: str
    change_type: str
    change_data: Json
    timestamp: dt.datetime
    log_topic: str
    log_partition: int
    log_offset: int


_VERSION = (
    "SELECT letter_id, version_number, content, document::text AS document, ydoc_state,"
    " log_topic, log_partition, log_offset, change_data::text AS change_data, created_at"
    " FROM letter_version WHERE letter_id = $1"
)


def _version(row: asyncpg.Record | None) -> Version | None:
    if row is None:
        return None
    values = dict(row)
    values["document"] = json.loads(values["document"])
    values["change_data"] = json.loads(values["change_data"])
    return Version(**values)


async def has_letter(db: Database, letter_id: str) -> bool:
    """Whether the snapshotter has folded the letter's `letter.created` (its `letters` row is
    committed with the position past it): before that its versions and audit rows are none of
    its history, not an empty one (a database rebuilt from the log, still behind)."""
    row = await db.fetchrow("SELECT 1 FROM letters WHERE letter_id = $1", letter_id)
    return row is not None


async def has_creation_row(db: Database, letter_id: str) -> bool:
    """Whether `collaboration` holds the letter's `letter.created` row: the snapshotter commits
    it with the `letters` row (`has_letter`), and only a rebuild removes both, so a letter held
    without it lost its rows by hand. Two index lookups: the letters row names the record (the
    table's unique key), whatever the letter's count of rows."""
    row = await db.fetchrow(
        "SELECT 1 FROM letters l JOIN collaboration c ON c.log_topic = l.log_topic"
        " AND c.log_partition = l.log_partition AND c.log_offset = l.log_offset"
        " AND c.change_type = 'letter.created' WHERE l.letter_id = $1",
        letter_id,
    )
    return row is not None


async def versions_counted(db: Database, letter_id: str) -> int:
    """The letter's versions as its saved working state counts them (0: none, or no state). The
    snapshotter saves the state with each version it cuts, in the version's transaction, and
    writes none ahead of its commits, so versions 1..N are in `letter_version` whenever the state
    says N: only a rebuild or a hand removes them. One primary-key lookup."""
    row = await db.fetchrow(
        "SELECT (state->'versions'->>'last_number')::int AS n FROM snapshotter_letter_state"
        " WHERE letter_id = $1",
        letter_id,
    )
    return int(row["n"] or 0) if row is not None else 0


async def latest_version(db: Database, letter_id: str) -> Version | None:
    row = await db.fetchrow(_VERSION + " ORDER BY version_number DESC LIMIT 1", letter_id)
    return _version(row)


async def version(db: Database, letter_id: str, number: int) -> Version | None:
    if not 1 <= number <= MAX_VERSION:
        return None  # no such version (and PostgreSQL would refuse the parameter)
    row = await db.fetchrow(_VERSION + " AND version_number = $2", letter_id, number)
    return _version(row)


async def version_at(db: Database, letter_id: str, at: dt.datetime) -> Version | None:
    """The last version created at or before `at` (a replay starts from it)."""
    query = _VERSION + " AND created_at <= $2 ORDER BY version_number DESC LIMIT 1"
    return _version(await db.fetchrow(query, letter_id, at))


async def list_versions(db: Database, letter_id: str) -> list[tuple[int, dt.datetime, Json]]:
    """(number, created_at, change_data) of every version, oldest first, without content."""
    rows = await db.fetch(
        "SELECT version_number, created_at, change_data::text AS data FROM letter_version"
        " WHERE letter_id = $1 ORDER BY version_number",
        letter_id,
    )
    return [(r["version_number"], r["created_at"], json.loads(r["data"])) for r in rows]


async def audit_rows(
    db: Database,
    letter_id: str,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int = 10_000,
) -> list[AuditEntry]:
    """Audit rows of a letter with since <= timestamp < until, in log order."""
    rows = await db.fetch(
        "SELECT id::text AS id, letter_id, user_id, change_type, change_data::text AS data,"
        ' "timestamp", log_topic, log_partition, log_offset FROM collaboration'
        ' WHERE letter_id = $1 AND ($2::timestamptz IS NULL OR "timestamp" >= $2)'
        ' AND ($3::timestamptz IS NULL OR "timestamp" < $3)'
        ' ORDER BY "timestamp", log_partition, log_offset, change_type LIMIT $4',
        letter_id,
        since,
        until,
        limit,
    )
    return [_audit(row) for row in rows]


def _audit(row: asyncpg.Record) -> AuditEntry:
    values = dict(row)
    values["change_data"] = json.loads(values.pop("data"))
    return AuditEntry(**values)
