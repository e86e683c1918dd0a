"""Versioned SQL migrations (schemas/migrations/NNN_name.sql) applied once each, in order.

Each migration runs in its own transaction together with its row in `schema_migrations`, so
it is either fully applied and recorded or not at all. A session advisory lock serialises
concurrent runners (two services starting at once): the second waits, then finds nothing to do.
"""

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

import schemas

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(schemas.__file__).parent / "migrations"
_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
# Arbitrary but fixed: every runner of this project takes the same lock.
_LOCK_KEY = 0x5715_0C01

_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    int PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(Exception):
    """A migration file is malformed, an applied one was changed afterwards, or the database
    refused one's SQL (rolled back whole; the cause is chained)."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migrations in `directory`, ordered by version; rejects stray or duplicate names."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: expected NNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"{path.name}: version {version} appears twice")
        found[version] = Migration(version, match.group(2), path.read_text())
    return [found[v] for v in sorted(found)]


async def migrate(dsn: str, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Apply the pending migrations; return those applied by this call."""
    migrations = load_migrations(directory)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        try:
            return await _apply_pending(conn, migrations)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    finally:
        await conn.close()


async def _apply_pending(conn: asyncpg.Connection, migrations: list[Migration]) -> list[Migration]:
    await conn.execute(_TABLE)
    rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
    applied = {row["version"]: row["checksum"] for row in rows}
    done: list[Migration] = []
    for migration in migrations:
        if migration.version in applied:
            if applied[migration.version] != migration.checksum:
                raise MigrationError(
                    f"migration {migration.version:03d}_{migration.name} differs from the one"
                    " this database applied (its checksum in schema_migrations): restore the"
                    " file as it was applied, and put the change in a new migration"
                )
            continue
        try:
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
        except asyncpg.PostgresConnectionError:
            raise  # the database went away: it may answer later
        except asyncpg.PostgresError as exc:  # it answered, and refused: retrying will not mend it
            raise MigrationError(
                f"migration {migration.version:03d}_{migration.name} failed and was rolled back:"
                f" {exc.__class__.__name__}: {exc}"
            ) from exc
        log.info("applied migration %03d_%s", migration.version, migration.name)
        done.append(migration)
    return done
