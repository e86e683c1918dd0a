"""A PostgreSQL outage in two log lines.

asyncpg (0.32) keeps a pool's `min_size` connections open (its floor): with PostgreSQL gone, the
pool's upkeep task retries at +0, 1, 3, 7, 15 s, then every 60 s, each time logging a WARNING
"Failed to restore the pool connection floor; retrying" with a ~30-line traceback. `watch(pool,
dsn)` takes over those of a pool we opened: each becomes one DEBUG line (the error, no
traceback), and the outage is told once per server, as eventlog.kafka_quiet tells a broker's:
the first retry starts a probe, a connection of its own; refused, it logs one WARNING
"PostgreSQL <host:port> unreachable since <time>", then connects again every `PROBE_S` until
that works, and logs one WARNING "reachable again". The pools recover by themselves (a read
connects anew); the probe only tells. Pools not watched log as asyncpg does.
"""

import asyncio
import contextlib
import logging

import asyncpg

from schemas.outages import told_outage
from schemas.settings import address_of

log = logging.getLogger(__name__)
PROBE_S = 1.0  # an unreachable server is tried again this often
PROBE_TIMEOUT_S = 3.0  # a probe's connection (a frozen host does not refuse)
_FLOOR = "Failed to restore the pool connection floor"
# A server that is down, starting or shutting down (class 57), or cut us off (class 08). Any
# other refusal (a database dropped, a password changed) is a server that answers.
_UNREACHABLE = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.InterfaceError,
)


def _brief(error: BaseException | None) -> str:
    """An error in one line, as the outage's WARNING names it."""
    if error is None:
        return "no error given"
    return " ".join(f"{type(error).__name__}: {error}".split())[:300]


class _Server:
    """One address's watched pools, and its outage while there is one."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.pools: dict[int, tuple[asyncpg.Pool, str]] = {}  # id: pool, its DSN (no weakref)
        self.probe: asyncio.Task[None] | None = None
        self.retries = 0  # asyncpg's floor retries taken over since the outage began

    def open_pools(self) -> int:
        """Drops the pools closed without `forget`; returns how many are left."""
        for key, (pool, _) in list(self.pools.items()):
            if pool.is_closing():
                del self.pools[key]
        return len(self.pools)

    def noticed(self, dsn: str, since: float, error: BaseException | None) -> None:
        loop = asyncio.get_running_loop()
        # A probe of a loop since closed (tests run several) never ran its `finally`.
        if self.probe is None or self.probe.get_loop() is not loop:
            self.retries = 0
            self.probe = loop.create_task(
                self._watch(dsn, since, error), name="postgres-outage-watch"
            )
        self.retries += 1

    @staticmethod
    async def _answers(dsn: str) -> bool:
        try:
            conn = await asyncpg.connect(dsn, timeout=PROBE_TIMEOUT_S)
        except _UNREACHABLE:
            return False
        except asyncpg.PostgresError:
            return True  # it answered, with a refusal of its own: the pool's error says which
        with contextlib.suppress(*_UNREACHABLE):
            await conn.close(timeout=PROBE_TIMEOUT_S)
        return True

    async def _watch(self, dsn: str, since: float, error: BaseException | None) -> None:
        try:
            told = await told_outage(
                log,
                f"PostgreSQL {self.where}",
                since,
                _brief(error),
                lambda: self._answers(dsn),
                PROBE_S,
                meanwhile="; asyncpg's retries are logged at DEBUG",
                after=lambda: f" ({self.retries} asyncpg retries logged at DEBUG)",
                watched=lambda: self.open_pools() > 0,  # every pool closed: nobody to tell
            )
            if not told:  # not an outage: a connection failed another way; said as asyncpg
                # says it, once per retry, without the traceback
                log.warning("PostgreSQL %s answers, but a pool could not connect: %s",
                            self.where, _brief(error))  # fmt: skip
        finally:
            self.probe = None


_SERVERS: dict[str, _Server] = {}


class _FloorRetries(logging.Filter):
    """On `asyncpg.pool`: a watched pool's floor retries become DEBUG lines and its server's
    outage (a logger's filters run in the task that logs: the pool's upkeep task)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not record.getMessage().startswith(_FLOOR):
            return True
        try:
            task = asyncio.current_task()
        except RuntimeError:  # no running loop: not the upkeep task
            return True
        found = _pool_of(task)
        if found is None:
            return True
        server, dsn = found
        error = record.exc_info[1] if record.exc_info else None
        log.debug(
            "PostgreSQL %s: asyncpg's pool floor not restored: %s", server.where, _brief(error)
        )
        server.noticed(dsn, record.created, error)
        return False


# asyncpg's own (private) name for a pool's upkeep task (asyncpg/pool.py, 0.32). Its public API
# tells no task's pool (`create_pool(connect=...)` would, but our pools are made elsewhere), so
# `watch` checks the name: renamed, no record would match and asyncpg's tracebacks would be back
# in operators' logs with nothing saying why. A WARNING, not a refusal: the service works.
_UPKEEP_TASK = "_maintenance_task"
_unnamed_told: set[type] = set()


def upkeep_task_named(cls: type) -> bool:
    """Whether asyncpg's pool class `cls` still names its upkeep task `_UPKEEP_TASK`; if not,
    says so once per class (a WARNING naming the file to update)."""
    if hasattr(cls, _UPKEEP_TASK):
        return True
    if cls not in _unnamed_told:
        _unnamed_told.add(cls)
        log.warning(
            "asyncpg %s's %s has no %s (its floor-retry task): a PostgreSQL outage is logged as"
            " asyncpg logs it (a traceback per retry); update schemas/pg_quiet.py for this asyncpg",
            asyncpg.__version__,
            cls.__qualname__,
            _UPKEEP_TASK,
        )
    return False


def _pool_of(task: asyncio.Task[object] | None) -> tuple[_Server, str] | None:
    """The server and DSN of the watched pool whose upkeep task `task` is."""
    if task is None:
        return None
    for server in _SERVERS.values():
        for pool, dsn in server.pools.values():
            if getattr(pool, _UPKEEP_TASK, None) is task:
                return server, dsn
    return None


_FILTER = _FloorRetries()


def watch(pool: asyncpg.Pool, dsn: str) -> asyncpg.Pool:
    """`pool` (of `dsn`), its floor retries quiet and its server's outage told once; returns
    it. `forget` it on closing."""
    upkeep_task_named(type(pool))
    where = address_of(dsn) or "(default address)"
    server = _SERVERS.setdefault(where, _Server(where))
    server.open_pools()
    server.pools[id(pool)] = (pool, dsn)
    logger = logging.getLogger("asyncpg.pool")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return pool


async def forget(pool: asyncpg.Pool) -> None:
    """Stop watching `pool`; its server's probe ends with its last pool."""
    for where, server in list(_SERVERS.items()):
        if server.pools.pop(id(pool), None) is None or server.pools:
            continue
        del _SERVERS[where]
        probe = server.probe
        if probe is not None and probe.get_loop() is asyncio.get_running_loop():
            probe.cancel()
            await asyncio.gather(probe, return_exceptions=True)
