"""The FastAPI application of one gateway instance.

The caller owns the log, Redis and PostgreSQL clients (it starts and closes them); the app's
lifespan starts the tail and drains on shutdown. It serves the y-websocket endpoint, the REST
API and the browser client.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from eventlog.errors import LogError
from eventlog.records import Log
from gateway.api import health, hocuspocus, rest, versions, websocket, yjs
from gateway.api.anonymous import RefuseAnonymousWrites
from gateway.api.body_limit import BodyLimit
from gateway.api.path_text import Utf8Path
from gateway.api.responses import (
    ErrorResponse,
    invalid_request,
    log_unavailable,
    method_not_allowed,
    redis_unavailable,
)
from gateway.api.webui import webui_router
from gateway.collab import comments, locks, notifications
from gateway.collab.channel import AppChannel
from gateway.collab.shared import Collab, CollabError
from gateway.service import Gateway
from schemas.settings import Settings


def create_app(settings: Settings, log: Log, redis: Any = None, pg: Any = None) -> FastAPI:
    gateway = Gateway(settings, log, redis, pg)
    collab = Collab(gateway)  # comments, locks, notifications (issue 7)
    section_locks = locks.Locks(collab)
    channel = AppChannel(collab, section_locks)
    gateway.ctx.app_messages = channel.receive
    gateway.ctx.remote_comments = collab.remote_comment

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await gateway.start()
        section_locks.start()
        channel.start()
        try:
            yield
        finally:
            await channel.close()
            await section_locks.close()
            await gateway.drain()

    docs = settings.dev or settings.api_docs
    app = FastAPI(
        title="steno-collab gateway",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
        # `/v1/letters/` is 404, not a 307 to a Location built from the Host header (http://
        # behind a TLS proxy, and whatever host the client named).
        redirect_slashes=False,
    )
    app.state.gateway = gateway
    app.state.readiness = health.Readiness(gateway.ctx)
    app.state.collab, app.state.locks = collab, section_locks
    app.add_exception_handler(CollabError, _collab_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(LogError, log_unavailable)
    for unreachable in (RedisConnectionError, RedisTimeoutError):
        app.add_exception_handler(unreachable, redis_unavailable)
    app.add_exception_handler(405, method_not_allowed)
    app.add_middleware(
        RefuseAnonymousWrites,
        verify=gateway.ctx.verifier.verify,
        refused=lambda: gateway.ctx.metrics.refuse("unauthorized"),
    )
    app.add_middleware(Utf8Path, refused=lambda: gateway.ctx.metrics.refuse("path_not_utf8"))
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.max_request_bytes,
        refused=lambda: gateway.ctx.metrics.refuse("request_too_large"),
    )
    app.include_router(health.router)
    app.include_router(rest.router)
    app.include_router(yjs.router)
    app.include_router(versions.router)
    for router in (comments.router, locks.router, notifications.router):
        app.include_router(router)
    app.include_router(hocuspocus.router)  # before /v1/{room}, which would take its path
    app.include_router(websocket.router)
    app.include_router(webui_router(settings))  # the browser client (dev login in dev mode)
    return app


async def _collab_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CollabError)
    body = {"detail": exc.detail, **(exc.body or {})}
    return ErrorResponse(body, status_code=exc.status, headers=exc.headers)
