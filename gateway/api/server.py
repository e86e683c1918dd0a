"""Serving the app with uvicorn, draining our clients before uvicorn closes sockets itself.

Uvicorn's own shutdown closes websockets with 1012; we first stop listening, flush pending
appends and close our clients with 1001 (DESIGN.md), then let uvicorn finish.

Uvicorn logs every WebSocket handshake (and every HTTP request) with its query string, and a
y-websocket client can only send its JWT there (`?token=`): at the gateway's INFO level every
user's bearer token went to the log in full. Its log records are redacted (`RedactTokens`).
"""

import contextlib
import gc
import logging
import re
import socket
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote_plus

import uvicorn
from fastapi import FastAPI

from gateway.api.heap import HeapFreezer
from gateway.api.waiting import Waiting, default_max_open, guarded_http, raise_descriptor_limit
from gateway.service import Gateway
from gateway.transport import SocketProtocol
from schemas.settings import Settings

# The library refuses frames above this with 1009 before we see them; between the configured
# limit and this, we close with 4413 and count the refusal.
WS_SIZE_HEADROOM = 2
GIL_SWITCH_INTERVAL_S = 0.0005


def tune_interpreter() -> None:
    """For a process that serves the gateway (the commands call it; tests do not).

    * GIL switch interval 0.5 ms: the embedded log's writer thread needs the GIL after each
      SQLite call (BEGIN, INSERT, COMMIT); with Python's default 5 ms each of those can wait
      5 ms for a busy event loop to let go, and every echo waits for its append.
      bench/log_append_busy.py, loop 80 % busy: append p50 14.6 -> 9.8 ms.
    * The heap as it is after start-up is frozen (`gc.freeze`, again once the server started,
      see GatewayServer.startup): a full collection otherwise walks every object of the
      imported libraries; one took 53 ms mid-benchmark, the largest delivery delay of the run.
      While serving, `HeapFreezer` does the same for what survives each full collection
      (gateway/api/heap.py).
    * The soft limit of open files is raised to the hard one.
    (docs/performance.md)"""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    raise_descriptor_limit()  # every socket is a descriptor (gateway/api/waiting.py)
    _freeze_heap()


def _freeze_heap() -> None:
    gc.collect()
    gc.freeze()


class RedactTokens(logging.Filter):
    """Replaces the value of every query parameter named `...token` in a record's message,
    its name read as the server reads it (`?tok%65n=` is a `token` to Starlette too)."""

    PARAMETER = re.compile(r"(?:(?<=[?&\s\"])|^)([^=&?\s\"]+)=([^&\s\"]+)")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(self._redact(arg) for arg in record.args)
        record.msg = self._redact(record.msg)
        return True

    def _redact(self, value: Any) -> Any:
        return self.PARAMETER.sub(_redacted, value) if isinstance(value, str) else value


def _redacted(found: re.Match[str]) -> str:
    name = found.group(1)
    secret = unquote_plus(name).lower().endswith("token")
    return f"{name}=[redacted]" if secret else found.group(0)


_REDACT = RedactTokens()


class GatewayServer(uvicorn.Server):
    def __init__(
        self, config: uvicorn.Config, gateway: Gateway, *, own_signals: bool = True
    ) -> None:
        super().__init__(config)
        self.gateway = gateway
        self.own_signals = own_signals
        self.freezer: HeapFreezer | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # Embedded in a larger process (`steno-collab dev`) the host owns the signals and stops
        # us by setting should_exit.
        if self.own_signals:
            with super().capture_signals():
                yield
        else:
            yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if gc.get_freeze_count():  # tune_interpreter() opted this process in: app objects too
            _freeze_heap()
            self.freezer = HeapFreezer()
            self.freezer.start()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        await self.gateway.drain()
        if self.freezer is not None:
            await self.freezer.stop()
        await super().shutdown(sockets)


def server_for(
    app: FastAPI, settings: Settings, host: str, port: int, own_signals: bool = True, **kw: Any
) -> GatewayServer:
    waiting = Waiting(
        settings.max_open_connections or default_max_open(),
        settings.request_timeout_s,
        app.state.gateway.ctx.metrics.refuse,
    )
    app.state.waiting = waiting  # unauthenticated Hocuspocus sockets wait there too
    config = uvicorn.Config(
        app,
        http=guarded_http(waiting),  # uvicorn's, with a request deadline and a socket cap
        host=host,
        port=port,
        ws_max_size=settings.max_message_bytes * WS_SIZE_HEADROOM,
        ws_ping_interval=20.0,
        # Yjs updates are small and mostly incompressible; deflating every frame for every peer
        # was the largest single cost in the profile (the reference server does not deflate).
        ws_per_message_deflate=False,
        ws=SocketProtocol,  # uvicorn's, plus writing a pre-framed message directly
        lifespan="on",
        log_level=kw.pop("log_level", "warning"),
        **kw,
    )
    for name in ("uvicorn.error", "uvicorn.access"):  # after the Config set up logging
        logging.getLogger(name).addFilter(_REDACT)  # the same filter once, however many servers
    return GatewayServer(config, app.state.gateway, own_signals=own_signals)
