"""An audit trail truncated by hand is no letter without history: `GET .../history` of a letter
PostgreSQL holds (its `letters` row) without the row of its creation answers 503 naming the
rebuild, not an empty 200 (tools/rest.py `_creation_row`); a letter the snapshotter has not
reached yet is still read from the log (tests/tools/test_rest_db_missing.py)."""

import asyncpg
import pytest

from eventlog import Log
from schemas.settings import Settings
from tests.tools.rest import auth, rest_client
from tests.tools.scripted import LETTER
from tests.tools.truncated import folded, log_kind

__all__ = ["folded", "log_kind"]  # the scripted letter folded into a database of its own
pytestmark = pytest.mark.timeout(120)
HISTORY = f"/v1/letters/{LETTER}/history"


async def test_a_truncated_audit_trail_is_503_naming_the_rebuild(
    folded: Settings, log: Log
) -> None:
    assert folded.database_url is not None
    async with rest_client(folded, log, folded.database_url) as client:
        whole = await client.get(HISTORY, headers=auth(folded))
        assert whole.status_code == 200, whole.text
        assert whole.json()[0]["type"] == "letter.created"

        conn = await asyncpg.connect(folded.database_url)
        try:
            await conn.execute("TRUNCATE collaboration")  # an operator's mistake
        finally:
            await conn.close()
        for params in ({}, {"order": "desc"}, {"since": "2000-01-01T00:00:00Z"}):
            lost = await client.get(HISTORY, params=params, headers=auth(folded))
            assert lost.status_code == 503, lost.text
            detail = lost.json()["detail"]
            assert f"backfill snapshotter --letters {LETTER}" in detail, detail
            assert int(lost.headers["Retry-After"]) > 0
