"""A write naming a thread or comment Redis does not have yet (the projector down or behind: a
restart, a rebalance) is not refused as unknown: it is looked for where the log is folded to its
end (PostgreSQL, the snapshotter's tables), 503 with Retry-After if no store has folded it; 404
only when one that has lacks it. The projector is the real one, its commits held."""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from eventlog.factory import open_log
from gateway.collab import cold, shared
from projector.store import Store
from schemas.bounded_pg import bounded_pool
from schemas.settings import Settings
from snapshotter.consumer import Snapshotter
from snapshotter.migrate import migrate
from snapshotter.store import Store as SnapshotStore
from tests.collab.conftest import Collab
from tests.gateway.harness import running_gateway
from tests.projector.support import caught_up, projector
from tests.snapshotter.scripts import drain

TEXT = "Dear Sir,\nWe demand 5000 EUR within 14 days.\nRegards"


class Hold:
    """Holds every projector commit while `gate` is clear: the projector stays where it was."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.gate = asyncio.Event()
        self.gate.set()
        original = Store.commit

        async def commit(store: Store, *args: Any, **kw: Any) -> Any:
            await self.gate.wait()
            return await original(store, *args, **kw)

        monkeypatch.setattr(Store, "commit", commit)


@asynccontextmanager
async def services(tmp_path: Path, redis_db: str, dsn: str) -> AsyncIterator[Collab]:
    settings = Settings(data_dir=tmp_path / "steno", redis_url=redis_db, database_url=dsn)
    log = open_log(settings)
    await log.start()
    redis = aioredis.Redis.from_url(redis_db)
    pg = await bounded_pool(dsn, 5.0, max_size=2)
    try:
        async with projector(settings, log), running_gateway(settings, log, redis, pg) as gw:
            async with httpx.AsyncClient(base_url=gw.http, timeout=10) as http:
                yield Collab(gw, redis, http)
    finally:
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


async def _ok(c: Collab, method: str, path: str, user: str = "u1", **kw: Any) -> Any:
    r = await c.call(method, path, user=user, **kw)
    assert r.status_code in (200, 201), r.text
    return r.json()


async def test_a_reply_to_a_thread_the_projector_has_not_folded_is_not_404(
    tmp_path: Path, redis_db: str, pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shared, "CATCH_UP_S", 0.3)  # the waits for the projector, PostgreSQL
    await migrate(pg_database)
    hold = Hold(monkeypatch)
    async with services(tmp_path, redis_db, pg_database) as c:
        lid = await c.gw.create_letter(TEXT)
        base = f"/v1/letters/{lid}/comments"
        new = {"body": "old", "anchor": {"from": 0, "to": 4}}
        old = (await _ok(c, "POST", base, json=new))["thread_id"]
        await caught_up(c.gw.log, c.gw.settings, c.redis)
        await snapshot(c, pg_database)

        hold.gate.clear()  # the projector is behind from here
        try:
            new = {"body": "fresh", "anchor": {"from": 10, "to": 16}}
            fresh = (await _ok(c, "POST", base, json=new))["thread_id"]
            held = json.loads(await c.redis.get(f"comments:{lid}") or "[]")
            assert [t["thread_id"] for t in held] == [old]  # not the fresh one
            # Both stores behind: neither can tell the thread is unknown.
            r = await c.call("POST", f"{base}/{fresh}/replies", "u2", json={"body": "early"})
            assert r.status_code == 503 and r.headers["Retry-After"], r.text
            assert r.json()["detail"] == cold.BEHIND

            await snapshot(c, pg_database)  # PostgreSQL has it: the reply is taken
            made = await _ok(c, "POST", f"{base}/{fresh}/replies", "u2", json={"body": "reply"})
            await snapshot(c, pg_database)  # and a comment made meanwhile is the author's own
            path = f"{base}/{fresh}/{made['comment_id']}"
            await _ok(c, "PATCH", path, "u2", json={"body": "edited"})
            await snapshot(c, pg_database)
            r = await c.call("PATCH", path, "u3", json={"body": "not mine"})
            assert r.status_code == 403, r.text
            await _ok(c, "POST", f"{base}/{fresh}/resolve")
            # Unknown where the log is folded to its end (PostgreSQL, now): 404.
            await snapshot(c, pg_database)
            r = await c.call("POST", f"{base}/no-such-thread/replies", json={"body": "x"})
            assert r.status_code == 404, r.text
        finally:
            hold.gate.set()

        await caught_up(c.gw.log, c.gw.settings, c.redis)
        shown = (await _ok(c, "GET", base))["threads"]
        assert [[m["body"] for m in t["comments"]] for t in shown] == [
            ["old"],
            ["fresh", "edited"],
        ]
        assert shown[1]["resolved"]
        # Both caught up: an unknown thread or comment is 404, from Redis.
        r = await c.call("POST", f"{base}/no-such-thread/replies", json={"body": "x"})
        assert r.status_code == 404 and r.json()["detail"] == "no such thread", r.text
        r = await c.call("PATCH", f"{base}/{fresh}/no-such-comment", json={"body": "x"})
        assert r.status_code == 404 and r.json()["detail"] == "no such comment", r.text
