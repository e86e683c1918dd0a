"""Entry point of `steno-collab snapshotter` and `python -m snapshotter`: settings from the
environment, serve until SIGTERM or Ctrl-C (an orderly stop, status 0); what an operator must
mend is one line on stderr: a setting or a table dropped by hand status 2, a store or log that
does not answer status 1."""

import asyncio
import contextlib
import signal
import socket
import sys

import asyncpg
import uvloop

from eventlog.errors import LogError, PositionPastEndError
from eventlog.factory import open_embedded_reader
from schemas.log_output import configure_logging
from schemas.metrics_http import MetricsBindError
from schemas.settings import Settings, address_of, data_dir_refusal
from snapshotter.migrate import MigrationError
from snapshotter.service import serve

COMMAND = "steno-collab snapshotter"  # `python -m snapshotter` names itself so too
METRICS_PORT_SETTING = "STENO_SNAPSHOTTER_METRICS_PORT"
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


def main(
    *,
    run_migrations: bool = True,
    metrics_port: int | None = None,
    metrics_setting: str = METRICS_PORT_SETTING,
) -> int:
    """Run until stopped. `metrics_port` None: the setting's; `metrics_setting` names what set
    it, as a refusal to bind it says."""
    settings = Settings()
    if not settings.database_url:
        print(f"{COMMAND}: set STENO_DATABASE_URL", file=sys.stderr)
        return 2
    # The embedded log's folder (a Kafka log needs none): a file there is a configuration error.
    if settings.log_url is None and (refused := data_dir_refusal(settings.data_dir)):
        print(f"{COMMAND}: {refused}", file=sys.stderr)
        return 2
    configure_logging(settings)
    if metrics_port is None:
        metrics_port, metrics_setting = settings.snapshotter_metrics_port, METRICS_PORT_SETTING
    try:
        uvloop.run(_until_stopped(settings, run_migrations, metrics_port))
    except asyncpg.UndefinedTableError as exc:  # dropped by hand: a restart would fail again
        print(f"{COMMAND}: {missing_table(exc, settings)}", file=sys.stderr)
        return 2
    except (PositionPastEndError, LogError) as exc:  # a LogError names the broker or directory
        print(f"{COMMAND}: {exc}", file=sys.stderr)
        return 1
    except UNREACHABLE as exc:
        where, reason = address_of(settings.database_url), str(exc) or exc.__class__.__name__
        print(f"{COMMAND}: PostgreSQL at {where}: {reason}", file=sys.stderr)
        return 1
    except MigrationError as exc:  # the database answers; waiting will not mend it
        print(f"{COMMAND}: {exc}", file=sys.stderr)
        return 1
    except MetricsBindError as exc:  # as the stores: one line, status 1
        print(f"{COMMAND}: {exc.naming(metrics_setting)}", file=sys.stderr)
        return 1
    return 0


def missing_table(exc: asyncpg.UndefinedTableError, settings: Settings) -> str:
    """One line for a table of ours gone from PostgreSQL (dropped by hand): migrations, applied
    once each, do not make it again. PostgreSQL holds nothing the log does not: rebuild it."""
    if settings.database_url is None:  # the data dir's: `dev` makes a fresh one and folds into it
        how = f"stop `dev`, delete {settings.data_dir.resolve() / 'postgres'}, start `dev`"
    else:
        how = (
            "point STENO_DATABASE_URL at a new database, then `steno-collab migrate` and"
            " `steno-collab backfill snapshotter --from-beginning --reset`"
        )
    return f"PostgreSQL lacks a table ({exc}): rebuild it from the log: {how}"


async def _until_stopped(
    settings: Settings, run_migrations: bool, metrics_port: int | None
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
        # An embedded log is read (the gateway writes it), and made if no one has yet: a
        # snapshotter started before the gateway waits for nothing.
        log = None if settings.log_url is not None else await open_embedded_reader(settings)
        try:
            await serve(settings, log, run_migrations=run_migrations, metrics_port=metrics_port)
        finally:
            if log is not None:
                await log.close()
