"""`steno-collab migrate`: apply the pending SQL migrations to STENO_DATABASE_URL.

A PostgreSQL it cannot reach is one stderr line and status 1 (it may answer later), a malformed
URL one line and status 2; neither shows the URL's password. A migration the database refuses
(its SQL fails: rolled back whole), or one changed after it was applied, is one line and status
1 too: nothing was left half done.
"""

import argparse
import asyncio
import sys
from typing import Any

from schemas.settings import Settings, address_of, hidden_password
from snapshotter.migrate import MigrationError, migrate
from steno_collab.commands.snapshotter import UNREACHABLE


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("migrate", help="apply pending PostgreSQL migrations")
    parser.add_argument("--database-url", help="overrides STENO_DATABASE_URL")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    dsn = args.database_url or Settings().database_url
    if not dsn:
        print(
            "steno-collab migrate: set STENO_DATABASE_URL or pass --database-url", file=sys.stderr
        )
        return 2
    try:
        applied = asyncio.run(migrate(dsn))
    except UNREACHABLE as exc:
        reason = str(exc) or exc.__class__.__name__
        print(f"steno-collab migrate: PostgreSQL at {address_of(dsn)}: {reason}", file=sys.stderr)
        return 1
    except MigrationError as exc:
        print(f"steno-collab migrate: {exc}", file=sys.stderr)
        return 1
    except (ValueError, OverflowError) as exc:  # asyncpg's DSN errors (a port out of range too)
        reason = hidden_password(dsn, str(exc))
        print(f"steno-collab migrate: malformed PostgreSQL URL: {reason}", file=sys.stderr)
        return 2
    for migration in applied:
        print(f"applied {migration.version:03d}_{migration.name}")
    if not applied:
        print("database is up to date")
    return 0
