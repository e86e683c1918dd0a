"""A PostgreSQL lost and made again: the auditor routes say what is missing (503, not a 500
traceback), and an empty database is no letter without history: until the snapshotter has
folded the letter, history comes from the log and versions are 503 "not there yet"."""

from collections.abc import AsyncIterator, Callable

import asyncpg
import httpx
import pytest
import pytest_asyncio

from eventlog import Log
from schemas.settings import Settings
from snapshotter.migrate import migrate
from steno_collab.services import gateway_app
from tests.conftest import fresh_database
from tests.tools.scripted import LETTER, scripted
from tests.tools.snapshots import snapshot_all
from tests.tools.test_rest import auth

BASE = f"/v1/letters/{LETTER}"


@pytest.fixture
def log_kind() -> str:
    return "embedded"  # PostgreSQL is under test here, not the log


@pytest_asyncio.fixture(loop_scope="session")
async def lost(
    pg_dsn: str, make_settings: Callable[..., Settings], log: Log
) -> AsyncIterator[Settings]:
    """The letter in the log; its gateway's database made again: empty, not even migrated."""
    async with fresh_database(pg_dsn) as dsn:
        settings = make_settings(database_url=dsn)
        await scripted(log, settings)
        yield settings


@pytest_asyncio.fixture(loop_scope="session")
async def client(lost: Settings, log: Log) -> AsyncIterator[httpx.AsyncClient]:
    pg = await asyncpg.create_pool(lost.database_url, min_size=1, max_size=2)
    transport = httpx.ASGITransport(app=gateway_app(lost, log, None, pg))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            yield http
    finally:
        await pg.close()


async def test_no_tables_then_not_folded_then_whole(
    client: httpx.AsyncClient, lost: Settings, log: Log
) -> None:
    headers = auth(lost)
    listed = await client.get("/v1/letters", headers=auth(lost, role="editor"))
    assert listed.status_code == 503, listed.text
    assert "run `steno-collab migrate`" in listed.json()["detail"]
    for path in ("versions", "versions/1", "history"):
        answer = await client.get(f"{BASE}/{path}", headers=headers)
        assert answer.status_code == 503, (path, answer.text)
        assert "run `steno-collab migrate`" in answer.json()["detail"]
        assert int(answer.headers["Retry-After"]) > 0

    assert lost.database_url is not None
    await migrate(lost.database_url)  # the snapshotter has not folded anything yet
    for path in ("versions", "versions/2"):
        answer = await client.get(f"{BASE}/{path}", headers=headers)
        assert answer.status_code == 503, (path, answer.text)
        assert "has not reached this letter" in answer.json()["detail"]
        assert int(answer.headers["Retry-After"]) > 0
    early = await client.get(f"{BASE}/history", headers=headers)
    assert early.status_code == 200
    assert [e["type"] for e in early.json()].count("version") == 2  # from the log: whole

    await snapshot_all(lost, log)
    versions = await client.get(f"{BASE}/versions", headers=headers)
    assert [v["change_data"]["label"] for v in versions.json()] == ["draft", "final"]
    assert (await client.get(f"{BASE}/history", headers=headers)).json() == early.json()
