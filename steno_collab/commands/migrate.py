"""`steno-collab migrate`: apply the pending SQL migrations to STENO_DATABASE_URL, or, when it is
unset, to the data dir's embedded PostgreSQL, as the tools find it (a running `dev`'s, else
started for the command: tools/sources.py).

A PostgreSQL it cannot reach is one stderr line and status 1 (it may answer later), a malformed
URL, or no URL and no PostgreSQL in the data dir, one line and status 2; neither shows the
URL's password. A migration the database refuses (its SQL fails: rolled back whole), or one
changed after it was applied, is one line and status 1 too: nothing was left half done.
"""

import argparse
import asyncio
import sys
from typing import Any

from schemas.settings import Settings, address_of, hidden_password
from snapshotter.migrate import Migration, MigrationError, migrate
from steno_collab.commands.snapshotter import UNREACHABLE
from steno_collab.embedded import ServiceStartError
from tools.sources import embedded_urls


class NoDatabase(LookupError):
    """No URL, and no PostgreSQL in the data dir."""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("migrate", help="apply pending PostgreSQL migrations")
    parser.add_argument("--database-url", help="overrides STENO_DATABASE_URL")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = Settings()
    used: list[str] = []  # the DSN migrated, once known (the embedded one's port is found)
    try:
        applied = asyncio.run(_migrate(settings, args.database_url, used))
    except NoDatabase as exc:
        print(f"steno-collab migrate: {exc}", file=sys.stderr)
        return 2
    except ServiceStartError as exc:
        print(f"steno-collab migrate: {exc}", file=sys.stderr)
        return 1
    except UNREACHABLE as exc:
        reason = str(exc) or exc.__class__.__name__
        where = address_of(used[0] if used else None)
        print(f"steno-collab migrate: PostgreSQL at {where}: {reason}", file=sys.stderr)
        return 1
    except MigrationError as exc:
        print(f"steno-collab migrate: {exc}", file=sys.stderr)
        return 1
    except (ValueError, OverflowError) as exc:  # asyncpg's DSN errors (a port out of range too)
        reason = hidden_password(used[0] if used else "", str(exc))
        print(f"steno-collab migrate: malformed PostgreSQL URL: {reason}", file=sys.stderr)
        return 2
    for migration in applied:
        print(f"applied {migration.version:03d}_{migration.name}")
    if not applied:
        print("database is up to date")
    return 0


async def _migrate(settings: Settings, dsn: str | None, used: list[str]) -> list[Migration]:
    if dsn := dsn or settings.database_url:
        used.append(dsn)
        return await migrate(dsn)
    async with embedded_urls(settings, True, redis=False) as found:
        if found.database_url is None:
            raise NoDatabase(
                f"no PostgreSQL in the data dir {settings.data_dir.resolve()} (`dev` makes it):"
                " set STENO_DATABASE_URL or pass --database-url"
            )
        used.append(found.database_url)
        return await migrate(found.database_url)
