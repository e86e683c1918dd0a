"""A gateway, a live projector and PostgreSQL for comment tests that hold or run the projector
and the snapshotter themselves (tests/collab/test_comments_rebuild.py,
test_reply_projector_behind.py)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis

from eventlog.factory import open_log
from projector.settings import ProjectorSettings
from schemas.bounded_pg import bounded_pool
from schemas.settings import Settings
from snapshotter.consumer import Snapshotter
from snapshotter.store import Store as SnapshotStore
from tests.collab.conftest import Collab
from tests.gateway.harness import running_gateway
from tests.projector.support import OPTIONS, projector
from tests.snapshotter.scripts import drain


@asynccontextmanager
async def services(
    tmp_path: Path,
    redis_db: str,
    dsn: str | None,
    options: ProjectorSettings = OPTIONS,
    **overrides: Any,
) -> AsyncIterator[Collab]:
    """`dsn` None: without PostgreSQL. `overrides`: more settings."""
    settings = Settings(
        data_dir=tmp_path / "steno", redis_url=redis_db, database_url=dsn, **overrides
    )
    log = open_log(settings)
    await log.start()
    redis = aioredis.Redis.from_url(redis_db)
    pg = await bounded_pool(dsn, 5.0, max_size=2) if dsn else None
    try:
        async with (
            projector(settings, log, options),
            running_gateway(settings, log, redis, pg) as gw,
        ):
            async with httpx.AsyncClient(base_url=gw.http, timeout=10) as http:
                yield Collab(gw, redis, http)
    finally:
        if pg is not None:
            await pg.close()
        await redis.aclose()
        await log.close()


async def snapshot(c: Collab, dsn: str) -> None:
    """The snapshotter folds the log as it is now into PostgreSQL."""
    store = await SnapshotStore.open(dsn)
    try:
        await drain(Snapshotter(c.gw.settings, c.gw.log, store), c.gw.log)
    finally:
        await store.close()


async def ok(c: Collab, method: str, path: str, user: str = "u1", **kw: Any) -> Any:
    r = await c.call(method, path, user=user, **kw)
    assert r.status_code in (200, 201), r.text
    return r.json()
