"""`steno-collab migrate`: apply the pending SQL migrations to STENO_DATABASE_URL."""

import argparse
import asyncio
import sys
from typing import Any

from schemas.settings import Settings
from snapshotter.migrate import migrate


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
    applied = asyncio.run(migrate(dsn))
    for migration in applied:
        print(f"applied {migration.version:03d}_{migration.name}")
    if not applied:
        print("database is up to date")
    return 0
