"""The gateway app's REST routes (the auditors' among them) as the tools tests call them: a
client of the app over a log and PostgreSQL, and an auditor's Authorization header."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx

from eventlog import Log
from gateway.auth import mint_token
from schemas.settings import Settings
from steno_collab.services import gateway_app
from tests.tools.session import FIRM


@asynccontextmanager
async def rest_client(
    settings: Settings, log: Log, dsn: str | None, **kw: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the gateway app (its routes and the auditors') over `log` and, given `dsn`,
    a pool of that PostgreSQL; `kw`: the client's own (headers)."""
    pg = None if dsn is None else await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    transport = httpx.ASGITransport(app=gateway_app(settings, log, None, pg))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gw", **kw) as http:
            yield http
    finally:
        if pg is not None:
            await pg.close()


def auth(settings: Settings, role: str = "auditor", firm: str = FIRM) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(settings, 'aud-1', firm, role)}"}
