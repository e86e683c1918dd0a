"""The FastAPI application of one gateway instance.

The caller owns the log, Redis and PostgreSQL clients (it starts and closes them); the app's
lifespan starts the tail and drains on shutdown. It serves the y-websocket endpoint, the REST
API and the browser client.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from eventlog.records import Log
from gateway import rest, websocket
from gateway.service import Gateway
from gateway.webui import webui_router
from schemas.settings import Settings


def create_app(settings: Settings, log: Log, redis: Any = None, pg: Any = None) -> FastAPI:
    gateway = Gateway(settings, log, redis, pg)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await gateway.drain()

    app = FastAPI(title="steno-collab gateway", lifespan=lifespan)
    app.state.gateway = gateway
    app.include_router(rest.router)
    app.include_router(websocket.router)
    app.include_router(webui_router(settings))  # the browser client (dev login in dev mode)
    return app
