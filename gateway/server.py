"""Serving the app with uvicorn, draining our clients before uvicorn closes sockets itself.

Uvicorn's own shutdown closes websockets with 1012; we first stop listening, flush pending
appends and close our clients with 1001 (DESIGN.md), then let uvicorn finish.
"""

import socket
from typing import Any

import uvicorn
from fastapi import FastAPI

from gateway.service import Gateway
from schemas.settings import Settings

# The library refuses frames above this with 1009 before we see them; between the configured
# limit and this, we close with 4413 and count the refusal.
WS_SIZE_HEADROOM = 2


class GatewayServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, gateway: Gateway) -> None:
        super().__init__(config)
        self.gateway = gateway

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        await self.gateway.drain()
        await super().shutdown(sockets)


def server_for(app: FastAPI, settings: Settings, host: str, port: int, **kw: Any) -> GatewayServer:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        ws_max_size=settings.max_message_bytes * WS_SIZE_HEADROOM,
        ws_ping_interval=20.0,
        # Yjs updates are small and mostly incompressible; deflating every frame for every peer
        # was the largest single cost in the profile (the reference server does not deflate).
        ws_per_message_deflate=False,
        lifespan="on",
        log_level=kw.pop("log_level", "warning"),
        **kw,
    )
    return GatewayServer(config, app.state.gateway)
