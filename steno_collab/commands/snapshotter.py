"""`steno-collab snapshotter`: versions and the audit trail into PostgreSQL (consumer group
`snapshotter` over the letters topic), until interrupted (SIGTERM or Ctrl-C: an orderly stop)."""

import argparse
import asyncio
import contextlib
import signal
import socket
import sys
from typing import Any

import asyncpg
import uvloop

from eventlog.errors import LogError, PositionPastEndError
from schemas.log_output import configure_logging
from schemas.metrics_http import MetricsBindError
from schemas.settings import Settings, address_of, data_dir_refusal
from snapshotter.migrate import MigrationError
from snapshotter.service import serve

# What connecting to PostgreSQL raises (a refused or lost connection, a bad name or password).
# Network errors at start are all PostgreSQL's: the log translates its own into LogError (and
# once running, the snapshotter retries these itself).
UNREACHABLE = (
    ConnectionError,
    TimeoutError,
    socket.gaierror,
    asyncpg.PostgresConnectionError,
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.InvalidCatalogNameError,
)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("snapshotter", help="run the snapshotter consumer")
    parser.add_argument(
        "--no-migrate", action="store_true", help="do not apply pending migrations at start"
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="Prometheus port (default: the setting, 9465; 0: off)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = Settings()
    if not settings.database_url:
        print("steno-collab snapshotter: set STENO_DATABASE_URL", file=sys.stderr)
        return 2
    # The embedded log's folder (a Kafka log needs none): a file there is a configuration error.
    if settings.log_url is None and (refused := data_dir_refusal(settings.data_dir)):
        print(f"steno-collab snapshotter: {refused}", file=sys.stderr)
        return 2
    configure_logging(settings)
    port, named = args.metrics_port, "--metrics-port"
    if port is None:
        port, named = settings.snapshotter_metrics_port, "STENO_SNAPSHOTTER_METRICS_PORT"
    try:
        uvloop.run(_until_stopped(settings, run_migrations=not args.no_migrate, metrics_port=port))
    except (PositionPastEndError, LogError) as exc:  # a LogError names the broker or directory
        print(f"steno-collab snapshotter: {exc}", file=sys.stderr)
        return 1
    except UNREACHABLE as exc:
        where, reason = address_of(settings.database_url), str(exc) or exc.__class__.__name__
        print(f"steno-collab snapshotter: PostgreSQL at {where}: {reason}", file=sys.stderr)
        return 1
    except MigrationError as exc:  # the database answers; waiting will not mend it
        print(f"steno-collab snapshotter: {exc}", file=sys.stderr)
        return 1
    except MetricsBindError as exc:  # as the stores: one line, status 1
        print(f"steno-collab snapshotter: {exc.naming(named)}", file=sys.stderr)
        return 1
    return 0


async def _until_stopped(
    settings: Settings, *, run_migrations: bool, metrics_port: int | None = None
) -> None:
    """Serve until SIGTERM (`docker stop`) or SIGINT. Either cancels the service, whose group
    membership then revokes its partitions: the snapshotter saves the letters' states ahead of
    their rows (`Snapshotter.checkpoint`) before the process exits, status 0."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await serve(settings, run_migrations=run_migrations, metrics_port=metrics_port)
