"""A gateway composed as `steno-collab gateway` composes it (with its lock-restore watcher), on
a site of one log, one Redis and the projector."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import redis.asyncio as aioredis

from eventlog.records import Log
from schemas.settings import Settings
from steno_collab.lock_restore import Watcher
from steno_collab.services import gateway_app
from tests.collab.conftest import Collab
from tests.gateway.harness import serving

CHECK_S = 0.02  # the watcher's interval here (10 s in production)


@dataclass
class Site:
    settings: Settings
    log: Log
    redis: aioredis.Redis


@asynccontextmanager
async def shell(site: Site, check_s: float = CHECK_S, **overrides: Any) -> AsyncIterator[Collab]:
    """A gateway as `steno-collab gateway` composes it, serving until the block ends."""
    settings = site.settings.model_copy(update=overrides)
    app = gateway_app(settings, site.log, site.redis, None, restore_check_s=check_s)
    found = getattr(app.state, "lock_restore", None)
    async with serving(app, settings, site.log) as gw:
        assert found is None or found.running  # started with the app
        async with httpx.AsyncClient(base_url=gw.http, timeout=10) as http:
            yield Collab(gw, site.redis, http)
    assert found is None or not found.running  # ended with the app


def watcher(collab: Collab) -> Watcher:
    found = collab.gw.app.state.lock_restore
    assert isinstance(found, Watcher)
    return found
