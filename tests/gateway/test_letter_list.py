"""GET /v1/letters: the caller's firm's letters, newest first, from the snapshotter's table
plus the ones this instance just created."""

import asyncio
import contextlib
from pathlib import Path

import asyncpg
import httpx

from schemas.settings import Settings
from snapshotter.migrate import migrate
from snapshotter.service import serve as run_snapshotter
from tests.gateway.harness import Running, running_gateway
from tests.support import eventually


async def _list(gw: Running, firm: str) -> list[str]:
    async with httpx.AsyncClient(base_url=gw.http) as http:
        r = await http.get(
            "/v1/letters", headers={"Authorization": f"Bearer {gw.token(firm=firm)}"}
        )
    assert r.status_code == 200, r.text
    return [letter["letter_id"] for letter in r.json()["letters"]]


async def test_lists_only_the_callers_firm_newest_first(tmp_path: Path, pg_database: str) -> None:
    await migrate(pg_database)
    settings = Settings(data_dir=tmp_path / "steno", partitions=2, database_url=pg_database)
    pg = await asyncpg.create_pool(pg_database, min_size=1, max_size=2)
    try:
        async with running_gateway(settings, pg=pg) as gw:
            first = await gw.create_letter(firm="firm-a", title="one")
            second = await gw.create_letter(firm="firm-a", title="two")
            other = await gw.create_letter(firm="firm-b", title="theirs")
            # Read-your-writes before the snapshotter has seen anything.
            assert await _list(gw, "firm-a") == [second, first]
            assert await _list(gw, "firm-b") == [other]
            snapshotter = asyncio.create_task(run_snapshotter(settings, gw.log))
            try:
                await eventually(
                    lambda: pg.fetchval("SELECT count(*) FROM letters WHERE firm_id = 'firm-a'"),
                    timeout=20,
                )
                await eventually(
                    lambda: pg.fetchval("SELECT count(*) = 3 FROM letters"), timeout=20
                )
            finally:
                snapshotter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await snapshotter
            await gw.log.close()
        # A fresh instance knows nothing in memory: the list now comes from PostgreSQL.
        async with running_gateway(settings, pg=pg) as fresh:
            assert await _list(fresh, "firm-a") == [second, first]
            async with httpx.AsyncClient(base_url=fresh.http) as http:
                r = await http.get("/v1/letters")
            assert r.status_code == 401
    finally:
        await pg.close()
