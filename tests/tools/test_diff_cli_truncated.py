"""`steno-collab diff` with a version removed by hand says so and names the rebuild, as REST's
`/diff` answers 503 (tests/tools/test_version_routes_truncated.py); it said "has no version",
as of a number the letter never reached. A number past what the letter counts still does."""

import asyncpg
import pytest

from eventlog import Log
from schemas.settings import Settings
from tests.tools.cli import cli_env, run_cli
from tests.tools.scripted import LETTER
from tests.tools.truncated import folded, log_kind

__all__ = ["folded", "log_kind"]  # the scripted letter folded into a database of its own
pytestmark = pytest.mark.timeout(120)


async def test_a_version_removed_by_hand_names_the_rebuild(folded: Settings, log: Log) -> None:
    env = cli_env(folded)
    code, out, err = await run_cli(env, "diff", LETTER, "--from", "1", "--to", "2")
    assert code == 0, err
    dsn = folded.database_url
    assert dsn is not None
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("TRUNCATE letter_version")
    finally:
        await conn.close()
    code, out, err = await run_cli(env, "diff", LETTER, "--from", "1", "--to", "2")
    assert code == 2 and out == "", (code, out, err)
    assert "no version 1 in PostgreSQL" in err, err
    assert f"`steno-collab backfill snapshotter --letters {LETTER}`" in err, err
    assert len(err.strip().splitlines()) == 1, err
    code, out, err = await run_cli(env, "diff", LETTER, "--from", "3", "--to", "9")
    assert code == 2 and "no version" in err and "backfill" not in err, err
