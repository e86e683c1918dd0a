"""A PostgreSQL lost and made again: the auditor routes say what is missing (503, not a 500
traceback), and an empty database is no letter without history: until the snapshotter has
folded the letter, history comes from the log and versions are 503 "not there yet"."""

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import pytest_asyncio

from eventlog import Log
from schemas.settings import Settings
from snapshotter import read
from snapshotter.migrate import migrate
from tests.tools.rest import auth, rest_client
from tests.tools.scripted import LETTER
from tests.tools.snapshots import snapshot_all
from tests.tools.truncated import log_kind, scripted_database

__all__ = ["log_kind"]  # the embedded log: PostgreSQL is under test
BASE = f"/v1/letters/{LETTER}"
versions_of = read.list_versions  # the real query, spied on below


@pytest_asyncio.fixture(loop_scope="session")
async def lost(
    pg_dsn: str, make_settings: Callable[..., Settings], log: Log
) -> AsyncIterator[Settings]:
    """The letter in the log; its gateway's database made again: empty, not even migrated."""
    async with scripted_database(pg_dsn, make_settings, log) as settings:
        yield settings


@pytest_asyncio.fixture(loop_scope="session")
async def client(lost: Settings, log: Log) -> AsyncIterator[httpx.AsyncClient]:
    async with rest_client(lost, log, lost.database_url) as http:
        yield http


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
        assert "a table dropped from a migrated one is not made again" in answer.json()["detail"]
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


async def test_versions_not_reached_answer_before_reading_them(
    client: httpx.AsyncClient, lost: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The letter not folded yet: 503 before the versions query, which could only be ignored."""
    assert lost.database_url is not None
    await migrate(lost.database_url)
    listed: list[str] = []

    async def list_versions(pg: Any, letter_id: str) -> Any:
        listed.append(letter_id)
        return await versions_of(pg, letter_id)

    monkeypatch.setattr(read, "list_versions", list_versions)
    answer = await client.get(f"{BASE}/versions", headers=auth(lost))
    assert answer.status_code == 503, answer.text
    assert "has not reached this letter" in answer.json()["detail"]
    assert listed == []
