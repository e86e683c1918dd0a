"""What a tool reads: the log (read-only), and Redis and PostgreSQL when they are reachable.

Distributed mode takes the URLs from settings. Embedded mode (URLs unset) finds the servers of
a running `steno-collab dev` through their pid files in the data dir (PostgreSQL writes its port
into `postmaster.pid`; redis-server shows its port in its process title, read from /proc); when
no `dev` holds the data dir, the tool starts the embedded servers whose data exists there itself,
for the duration of the command.
"""

import contextlib
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from redis.asyncio import Redis

from eventlog import Log
from eventlog.embedded_store import DB_NAME
from eventlog.errors import LogError
from eventlog.factory import open_log
from schemas import pg_quiet
from schemas.events import Topic
from schemas.settings import LOG_FOLDER, Settings, address_of
from schemas.stores import UnreachableError, answering_redis
from snapshotter.entry import missing_table as missing_table  # its one line, named here too
from steno_collab.embedded import (
    DataDirLocked,
    EmbeddedServices,
    ServiceStartError,
    lock_data_dir,
)


class SourceError(RuntimeError):
    """A store the command needs is not reachable; the message says which and why."""


class DevServerDown(SourceError, ServiceStartError):
    """A server of the running `dev` died: the tools' SourceError, `migrate`'s ServiceStartError
    (its one-line status-1 "cannot reach PostgreSQL"), not a traceback."""


@dataclass
class Sources:
    settings: Settings
    log: Log
    redis: Redis | None = None
    pg: Any = None  # asyncpg pool

    @property
    def letters_topic(self) -> str:
        return self.settings.topic(Topic.LETTERS)

    def partition_of(self, letter_id: str) -> int:
        return self.log.partition_for(self.letters_topic, letter_id.encode())


@contextlib.asynccontextmanager
async def open_sources(
    settings: Settings, *, redis: bool = False, pg: bool | None = False
) -> AsyncIterator[Sources]:
    """The log (always), Redis and PostgreSQL (when asked for) of `settings`. `pg=None`: use
    PostgreSQL when there is one (replay starts from its versions), else the log alone."""
    async with contextlib.AsyncExitStack() as stack:
        wanted = redis or pg is not False
        settings = await stack.enter_async_context(embedded_urls(settings, wanted, redis=redis))
        optional = pg is None
        if pg is None:
            pg = settings.database_url is not None
        log = open_log(settings, readonly=True)
        try:
            await log.start()
        except LogError as exc:  # no log yet in this data dir, or the broker is unreachable
            raise SourceError(f"the log is not readable: {_why(exc, settings)}") from exc
        stack.push_async_callback(log.close)
        sources = Sources(settings, log)
        if redis:
            if settings.redis_url is None:
                raise SourceError("no Redis: set STENO_REDIS_URL")
            try:  # a PING now: unreachable, it would surface mid-command (verify: "mismatch")
                sources.redis = await answering_redis(settings.redis_url)
            except UnreachableError as exc:
                raise SourceError(str(exc)) from exc
            stack.push_async_callback(sources.redis.aclose)
        if pg:
            sources.pg = await _pool(settings)
            stack.push_async_callback(sources.pg.close)
            stack.push_async_callback(pg_quiet.forget, sources.pg)
            if optional and not await _migrated(sources.pg):
                sources.pg = None  # a database the snapshotter never wrote: the log alone
        yield sources


def _why(exc: LogError, settings: Settings) -> str:
    """A missing embedded log named with the data dir looked in, absolute, and how to name
    another: `dev --data-dir X` then a tool run elsewhere looked in ./.steno (exit 2)."""
    where = settings.data_dir / LOG_FOLDER / DB_NAME
    if settings.log_url is not None or where.exists():
        return str(exc)
    return (
        f"no embedded log at {where.absolute()}: the data dir is {settings.data_dir.absolute()}"
        " (STENO_DATA_DIR or --data-dir, default .steno in the current directory: give the one"
        " `steno-collab dev` runs on)"
    )


async def _migrated(pool: Any) -> bool:
    return await pool.fetchval("SELECT to_regclass('letter_version')") is not None


async def _pool(settings: Settings) -> Any:
    if settings.database_url is None:
        raise SourceError("no PostgreSQL: set STENO_DATABASE_URL")
    url = address_of(settings.database_url)
    try:
        pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=4)
        return pg_quiet.watch(pool, settings.database_url)
    except ValueError as exc:  # a malformed DSN; asyncpg's ClientConfigurationError is one too
        raise SourceError(f"PostgreSQL at {url} unusable: {exc}") from exc
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise SourceError(f"PostgreSQL at {url} unreachable: {exc}") from exc


@contextlib.asynccontextmanager
async def embedded_urls(
    settings: Settings, wanted: bool, *, redis: bool = True
) -> AsyncIterator[Settings]:
    """Settings with the embedded servers' URLs filled in (started here if nobody runs them;
    Redis not, unless `redis`)."""
    missing = (redis and settings.redis_url is None) or settings.database_url is None
    if not wanted or not missing:
        yield settings
        return
    data_dir = settings.data_dir.resolve()
    if not data_dir.is_dir():  # a mistyped dir: nothing runs or starts there, and none is made
        yield settings
        return
    try:
        lock_data_dir(data_dir).close()  # free: no `dev` runs on this data dir
    except DataDirLocked:
        yield settings.model_copy(update=running_urls(data_dir, settings, redis=redis))
        return
    # Only servers whose data exists: a tool never initialises a fresh, empty store.
    with_redis = redis and settings.redis_url is None and (data_dir / "redis").is_dir()
    with_postgres = (
        settings.database_url is None and (data_dir / "postgres" / "PG_VERSION").exists()
    )
    if not (with_redis or with_postgres):  # nothing to start: the dir is not ours to lock
        yield settings
        return
    services = EmbeddedServices(data_dir, persistent=True, redis=with_redis, postgres=with_postgres)
    async with services:
        urls = {}
        if services.redis is not None:
            urls["redis_url"] = services.redis_url
        if services.postgres is not None:
            urls["database_url"] = services.database_url
        yield settings.model_copy(update=urls)


def running_urls(data_dir: Path, settings: Settings, *, redis: bool = True) -> dict[str, str]:
    """URLs of the servers a running `steno-collab dev` started under `data_dir` (Redis's not,
    unless `redis`). SourceError: one it started has died (`dev` exits on that: restart it)."""
    urls: dict[str, str] = {}
    if settings.database_url is None:
        port = _postgres_port(data_dir / "postgres" / "postmaster.pid", data_dir)
        if port is not None:
            urls["database_url"] = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    if redis and settings.redis_url is None:
        port = _redis_port(data_dir / "redis" / "redis.pid", data_dir)
        if port is not None:
            urls["redis_url"] = f"redis://127.0.0.1:{port}/0"
    return urls


def _postgres_port(pidfile: Path, data_dir: Path) -> int | None:
    # postmaster.pid: pid, data dir, start time, port, socket dir, listen address, ...
    try:
        lines = pidfile.read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except (OSError, ValueError, IndexError):
        return None  # none started (external), or not yet written
    if not _running(pid):  # PostgreSQL removes it when it stops: this one died
        raise _dead("PostgreSQL", data_dir)
    return port


def _redis_port(pidfile: Path, data_dir: Path) -> int | None:
    # redis-server retitles itself "redis-server 127.0.0.1:PORT"; before that, argv has --port.
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None  # none started (external), or not yet written
    try:  # a zombie's is empty; another process may have the pid by now
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        cmdline = ""
    found = re.search(r"--port (\d+)|:(\d+)\b", cmdline)
    if "redis-server" not in cmdline or found is None:  # redis removes it when it stops
        raise _dead("Redis", data_dir)
    return int(found.group(1) or found.group(2))


def _dead(server: str, data_dir: Path) -> DevServerDown:
    try:
        holder = (data_dir / "services.lock").read_text().strip() or "unknown"
    except OSError:
        holder = "unknown"
    return DevServerDown(
        f"the embedded {server} of the running `steno-collab dev` (pid {holder}) is not running:"
        " restart it"
    )


def _running(pid: int) -> bool:
    """Running, not a zombie (exited, its parent not yet told): `alive` counts those."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (not Linux): signal 0 is what there is
        return alive(pid)
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def alive(pid: int) -> bool:
    """Whether process `pid` of this machine (pid namespace) runs, whoever's it is."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # PostgreSQL runs as another user when we are root
        return True
    return True
