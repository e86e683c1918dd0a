"""`steno-collab snapshotter`: versions and the audit trail into PostgreSQL (consumer group
`snapshotter` over the letters topic), until interrupted."""

import argparse
import contextlib
import sys
from typing import Any

import uvloop

from eventlog.errors import PositionPastEndError
from schemas.log_output import configure_logging
from schemas.settings import Settings
from snapshotter.service import serve


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("snapshotter", help="run the snapshotter consumer")
    parser.add_argument(
        "--no-migrate", action="store_true", help="do not apply pending migrations at start"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = Settings()
    configure_logging(settings)
    if not settings.database_url:
        print("steno-collab snapshotter: set STENO_DATABASE_URL", file=sys.stderr)
        return 2
    try:
        with contextlib.suppress(KeyboardInterrupt):
            uvloop.run(serve(settings, run_migrations=not args.no_migrate))
    except PositionPastEndError as exc:
        print(f"steno-collab snapshotter: {exc}", file=sys.stderr)
        return 1
    return 0
