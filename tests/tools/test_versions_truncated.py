"""Versions removed by hand are no letter without versions: `GET .../versions` of a letter whose
saved working state (`snapshotter_letter_state`, saved with every version in its transaction)
counts more versions than `letter_version` holds up to that number answers 503 naming the
rebuild, not `200 []` (tools/rest.py `_counted`); a letter that never had a version is still
`200 []`, and the rebuild named makes the list whole again."""

import asyncpg
import httpx
import pytest

from eventlog import Log
from schemas.events import Topic
from schemas.settings import Settings
from tests.snapshotter.scripts import LetterScript, append
from tests.tools.rest import auth, rest_client
from tests.tools.scripted import LETTER
from tests.tools.session import FIRM
from tests.tools.snapshots import snapshot_all
from tests.tools.truncated import folded, log_kind, names_the_rebuild
from tools import backfill_snapshotter
from tools.progress import Meter
from tools.sources import Sources

__all__ = ["folded", "log_kind"]  # the scripted letter folded into a database of its own
pytestmark = pytest.mark.timeout(120)
VERSIONS = f"/v1/letters/{LETTER}/versions"
UNVERSIONED = "L-no-versions"


async def _numbers(client: httpx.AsyncClient, settings: Settings, path: str) -> list[int]:
    answer = await client.get(path, headers=auth(settings))
    assert answer.status_code == 200, answer.text
    return [v["version_number"] for v in answer.json()]


async def test_versions_removed_by_hand_are_503_naming_the_rebuild(
    folded: Settings, log: Log
) -> None:
    dsn = folded.database_url
    assert dsn is not None
    # A letter that never had a version, folded too: its empty list is whole.
    s = LetterScript(UNVERSIONED, firm=FIRM)
    await append(log, folded.topic(Topic.LETTERS), [s.created("user-0"), s.joined("user-0", "c")])
    await snapshot_all(folded, log)
    unversioned = f"/v1/letters/{UNVERSIONED}/versions"
    async with rest_client(folded, log, dsn) as client:
        whole = await _numbers(client, folded, VERSIONS)
        assert len(whole) >= 2 and whole == list(range(1, len(whole) + 1))
        assert await _numbers(client, folded, unversioned) == []

        conn = await asyncpg.connect(dsn)
        try:
            # A gap: the first version alone deleted (an operator's mistake) ...
            await conn.execute(
                "DELETE FROM letter_version WHERE letter_id = $1 AND version_number = 1", LETTER
            )
            names_the_rebuild(await client.get(VERSIONS, headers=auth(folded)))
            # ... and the whole table.
            await conn.execute("TRUNCATE letter_version")
        finally:
            await conn.close()
        names_the_rebuild(await client.get(VERSIONS, headers=auth(folded)))
        assert await _numbers(client, folded, unversioned) == []  # no false alarm

        # The rebuild the answer names makes the list whole again.
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
        try:
            src = Sources(folded, log, pg=pool)
            await backfill_snapshotter.run_letters(src, [LETTER], Meter())
        finally:
            await pool.close()
        assert await _numbers(client, folded, VERSIONS) == whole
