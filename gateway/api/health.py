"""Health, readiness and metrics: the routes operators and their probes call, without a user.

Readiness asks the log, Redis and PostgreSQL, and anyone may ask it: a request each, and a
flood of anonymous /readyz took PostgreSQL connections from the gateway's pool of four and
sent the broker a request each. One round of checks runs at a time and its answer serves every
caller for `READY_REUSE_S` (draining is read live). The checks of a round run at once, each
answered within `READY_TIMEOUT_S`, so one store that hangs neither delays nor hides the others.

/metrics tells the gateway's traffic and refusals; with `metrics_token` set it answers only a
scraper that presents it (`Authorization: Bearer`, as Prometheus' `authorization` setting
sends), so the public port need not give them away.
"""

import asyncio
import hmac
import time
from collections.abc import Awaitable
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST

from gateway.api.responses import json_error
from gateway.api.rest import GatewayDep
from gateway.context import Context
from schemas.bounded_pg import BoundedPool
from schemas.events import Topic

# The scraper's token, documented by hand: `scraper` reads it from the request (see there).
SCRAPER_TOKEN = {
    "name": "Authorization",
    "in": "header",
    "required": False,
    "description": "`Bearer <metrics_token>`, when the gateway has one",
    "schema": {"type": "string"},
}
READY_REUSE_S = 1.0
READY_TIMEOUT_S = 2.0  # per check: a store that hangs is not ready, and the probe gets an answer
router = APIRouter()


class Readiness:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._round: asyncio.Future[dict[str, str]] | None = None
        self._answered_at = -READY_REUSE_S

    async def checks(self) -> dict[str, str]:
        fresh = time.monotonic() - self._answered_at < READY_REUSE_S
        if self._round is None or (self._round.done() and not fresh):
            self._round = asyncio.ensure_future(self._check_all())
        return dict(await asyncio.shield(self._round))  # a caller that leaves stops no one

    async def _check_all(self) -> dict[str, str]:
        ctx = self.ctx
        probes: dict[str, Awaitable[object]] = {
            "log": ctx.log.end_offsets(ctx.settings.topic(Topic.LETTERS))
        }
        if ctx.redis is not None:
            probes["redis"] = ctx.redis.ping()
        if ctx.pg is not None:
            probes["postgres"] = _ping(ctx.pg)
        # At once: a store that hangs must not hold back the others' answers.
        answers = await asyncio.gather(*map(_check, probes.values()))
        checks = dict(zip(probes, answers, strict=True))
        jwks = ctx.verifier.jwks
        if jwks is not None:  # known keys serve while the provider is away; none: no logins
            checks["jwks"] = "ok" if jwks.keys else f"error: {jwks.error}"
        self._answered_at = time.monotonic()
        return checks


_stragglers: set[asyncio.Future[object]] = set()


def _ping(pg: Any) -> Awaitable[object]:
    """PostgreSQL itself, past the bounded pool's hold after a slow read (schemas/bounded_pg.py);
    a plain pool (tests' harness) answers `SELECT 1`."""
    return pg.ping() if isinstance(pg, BoundedPool) else pg.fetchval("SELECT 1")


async def _check(awaitable: Awaitable[object]) -> str:
    check = asyncio.ensure_future(awaitable)
    await asyncio.wait({check}, timeout=READY_TIMEOUT_S)
    if not check.done():
        # Not awaited: a client's clean-up of a cancelled call may itself wait on the store
        # (asyncpg asks a frozen server to cancel the query), and the probe gets its answer now.
        check.cancel()
        _stragglers.add(check)
        check.add_done_callback(_forget)
        return "error: TimeoutError"
    if check.cancelled():  # by the loop's shutdown, say: reported like any failure
        return "error: CancelledError"
    if (exc := check.exception()) is not None:  # reported instead of raised
        return f"error: {exc.__class__.__name__}"
    return "ok"


def _forget(check: asyncio.Future[object]) -> None:
    _stragglers.discard(check)
    if not check.cancelled():
        check.exception()  # retrieved: nobody waits for it any more


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={503: {"model": dict[str, str], "description": "a check failed: each says why"}},
)
async def readyz(request: Request, gateway: GatewayDep, response: Response) -> dict[str, str]:
    readiness: Readiness = request.app.state.readiness
    checks = await readiness.checks()
    if gateway.draining:
        checks["gateway"] = "draining"
    if any(value != "ok" for value in checks.values()):
        response.status_code = 503
    return checks


def scraper(request: Request, gateway: GatewayDep) -> None:
    # The header read from the request, not as a parameter: a parameter makes FastAPI document
    # a 422 (its validation list) that this route never answers.
    expected = gateway.ctx.settings.metrics_token
    wanted = expected.get_secret_value().encode() if expected else b""
    if not wanted:  # unset (a blank token is none: an empty `Bearer ` must not be it)
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), wanted):
        gateway.ctx.metrics.refuse("unauthorized")
        raise HTTPException(401, "unauthorized", {"WWW-Authenticate": "Bearer"})


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    dependencies=[Depends(scraper)],
    responses={401: json_error(401)},
    openapi_extra={"parameters": [SCRAPER_TOKEN]},
)
async def metrics(gateway: GatewayDep) -> Response:
    """Prometheus' text format (a bearer token when the gateway has `metrics_token`)."""
    return Response(gateway.ctx.metrics.render(), media_type=CONTENT_TYPE_LATEST)
