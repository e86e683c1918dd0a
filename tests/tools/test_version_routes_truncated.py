"""A version removed by hand is no version that never was: `GET .../versions/{n}` and `GET
.../diff` with `n` as an end answer 503 naming the rebuild, as `GET .../versions` does
(tests/tools/test_versions_truncated.py), when the letter's saved working state counts `n` and
`letter_version` lacks it (tools/rest.py `_folded`, `_lost`); a number past that count is
still 404."""

from typing import Any

import asyncpg
import httpx
import pytest

from eventlog import Log
from schemas.settings import Settings
from snapshotter import read
from tests.tools.rest import auth, rest_client
from tests.tools.scripted import LETTER
from tests.tools.truncated import folded, log_kind, names_the_rebuild

__all__ = ["folded", "log_kind"]  # the scripted letter folded into a database of its own
pytestmark = pytest.mark.timeout(120)
BASE = f"/v1/letters/{LETTER}"


async def _get(client: httpx.AsyncClient, settings: Settings, path: str) -> httpx.Response:
    return await client.get(f"{BASE}/{path}", headers=auth(settings))


async def test_a_version_removed_by_hand_is_503_naming_the_rebuild(
    folded: Settings, log: Log
) -> None:
    dsn = folded.database_url
    assert dsn is not None
    async with rest_client(folded, log, dsn) as client:
        for path in ("versions/1", "versions/2", "diff?from=1&to=2"):
            assert (await _get(client, folded, path)).status_code == 200, path
        conn = await asyncpg.connect(dsn)
        try:
            # A gap: the first version alone deleted (PostgreSQL's latest is still past it) ...
            await conn.execute(
                "DELETE FROM letter_version WHERE letter_id = $1 AND version_number = 1", LETTER
            )
            for path in ("versions/1", "diff?from=1&to=2", "diff?from=2&to=1"):
                names_the_rebuild(await _get(client, folded, path))
            assert (await _get(client, folded, "versions/2")).status_code == 200
            # ... and the whole table (no latest at all).
            await conn.execute("TRUNCATE letter_version")
        finally:
            await conn.close()
        for path in ("versions/1", "versions/2", "diff?from=2&to=1"):
            names_the_rebuild(await _get(client, folded, path))
        # A number the state never counted is no version: 404, no false alarm.
        for path in ("versions/3", "versions/0", "versions/-1"):
            assert (await _get(client, folded, path)).status_code == 404, path


async def test_a_version_removed_by_hand_reads_the_saved_count_once(
    folded: Settings, log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    dsn = folded.database_url
    assert dsn is not None
    asked: list[str] = []
    counted = read.versions_counted

    async def counting(db: Any, letter_id: str) -> int:
        asked.append(letter_id)
        return await counted(db, letter_id)

    monkeypatch.setattr(read, "versions_counted", counting)
    async with rest_client(folded, log, dsn) as client:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(
                "DELETE FROM letter_version WHERE letter_id = $1 AND version_number = 1", LETTER
            )
        finally:
            await conn.close()
        names_the_rebuild(await _get(client, folded, "versions/1"))  # not found, looked again
        assert asked == [LETTER]
        asked.clear()
        assert (await _get(client, folded, "versions/3")).status_code == 404  # never was
        assert asked == [LETTER]
