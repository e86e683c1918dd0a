"""The services as coroutines that run until cancelled, wired from settings and a shared log.

The entry points (`steno-collab gateway`, `dev`) compose them here: the gateway app gets the
auditor routes from tools mounted next to its own, and the restore of the section locks it
runs by itself after Redis lost them (steno_collab/lock_restore.py): the gateway itself never
imports tools.
"""

import asyncio
import errno
import socket
from contextlib import AsyncExitStack
from functools import partial
from typing import Any

import asyncpg
from fastapi import FastAPI
from redis.asyncio import Redis

from eventlog import Log
from gateway.api.app import create_app
from gateway.api.rest import bearer_claims
from gateway.api.server import server_for
from projector.entry import run as run_projector
from projector.settings import ProjectorSettings
from schemas import stores
from schemas.bounded_pg import BoundedPool, bounded_pool
from schemas.settings import Settings
from schemas.stores import unreachable
from snapshotter.service import serve as run_snapshotter
from steno_collab.lock_restore import CHECK_S, Reminder, Watcher, watch
from tools.rest import auditor_router


class PortInUseError(RuntimeError):
    """The HTTP port is taken: say so before anything else starts."""


def bind(host: str, port: int) -> socket.socket:
    """Bind the listening socket up front, so a taken port is a clear message, not a traceback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(
                f"port {port} on {host} is already in use (another steno-collab?); "
                "choose another with --port or STENO_PORT"
            ) from None
        raise
    # Listening from now on: a client that comes as soon as the banner names the address (the
    # gateway may still be starting) waits in the backlog instead of being refused.
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def gateway_app(
    settings: Settings, log: Log, redis: Any, pg: Any, *, restore_check_s: float = CHECK_S
) -> FastAPI:
    app = create_app(settings, log, redis, pg)
    ctx = app.state.gateway.ctx  # auditors: the same keys, the same budget per user
    app.include_router(auditor_router(settings, log, redis, pg, partial(bearer_claims, ctx)))
    if redis is not None and settings.locks_auto_restore:  # no Redis: no locks to restore
        watcher = Watcher(settings, log, redis, restore_check_s, ctx.metrics.locks_auto_restores)
        app.state.lock_restore = watcher
        ctx.wake_restore = watcher.wake  # the gates' 503s restore now, not at the next check
        watch(app, watcher)
    elif redis is not None:  # any Redis restart then waits for `backfill locks`: say so
        ctx.wake_restore = Reminder(ctx.metrics.locks_unrestored_found).wake
    return app


async def connect_stores(settings: Settings) -> tuple[Redis | None, Any]:
    """Read-side clients for the gateway (it only reads Redis live state and PostgreSQL)."""
    redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
    pg = await _pool(settings.database_url) if settings.database_url else None
    return redis, pg


async def _pool(url: str) -> BoundedPool:
    # Every read bounded, a frozen server's connections terminated: PostgreSQL is the gateway's
    # shortcut (the log is the truth), so one that hangs must fail its readers as an outage does.
    return await bounded_pool(url, stores.CONNECT_TIMEOUT_S, max_size=4)


async def connect_checked(settings: Settings, started: AsyncExitStack) -> tuple[Redis | None, Any]:
    """`connect_stores`, each store shown to answer (closed by `started`); UnreachableError
    names the one that does not, without its password."""
    redis, pg = None, None
    if url := settings.database_url:
        try:
            pg = await _pool(url)
        except (OSError, ValueError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise unreachable("PostgreSQL", url, exc) from None
        started.push_async_callback(pg.close)
    if url := settings.redis_url:
        redis = await stores.answering_redis(url)
        started.push_async_callback(redis.aclose)
    return redis, pg


async def run_gateway(settings: Settings, log: Log, sock: socket.socket) -> None:
    """Serve the gateway on `sock` until cancelled, then drain (1001 to clients) and return."""
    redis, pg = await connect_stores(settings)
    try:
        app = gateway_app(settings, log, redis, pg)
        host, port = sock.getsockname()[:2]
        # log_config=None: uvicorn's records go through the root logger, at the configured level,
        # as in `gateway` (at uvicorn's default, "warning", dev printed no access record).
        level = settings.log_level.lower()
        server = server_for(
            app, settings, host, port, own_signals=False, log_level=level, log_config=None
        )
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            await asyncio.shield(serving)
        except asyncio.CancelledError:
            server.should_exit = True
            await serving
            raise
    finally:
        if redis is not None:
            await redis.aclose()
        if pg is not None:
            await pg.close()


async def run_projector_in(settings: Settings, log: Log) -> None:
    # One process, one port: the projector's own metrics port stays closed in dev mode.
    await run_projector(settings, ProjectorSettings(metrics_port=None), log)


async def run_snapshotter_in(settings: Settings, log: Log) -> None:
    await run_snapshotter(settings, log)
