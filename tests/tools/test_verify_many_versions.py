"""`verify` of a letter with many versions reads their documents (Yjs state, text, JSON) a page
at a time as the fold passes their positions, not all of them at once; a forged version in the
middle of them is still found. The queries are PostgreSQL's own, seen by asyncpg's query logger."""

import math
from typing import Any

import asyncpg
import pytest

from eventlog import Log
from schemas.settings import Settings
from tests.tools.conftest import recorded
from tools import verify
from tools.backfill import backfill
from tools.progress import Meter
from tools.sources import Sources, open_sources

LETTER = "many-versions"
PAGE = 3


@pytest.fixture
def log_kind() -> str:
    return "embedded"  # verify reads the log through the same scan on either log


@pytest.fixture
def settings(make_settings: Any) -> Settings:
    return make_settings(autosave_updates=2)  # a version every other update: dozens of them


async def _verified(settings: Settings, log: Log) -> tuple[list[verify.Finding], list[Any]]:
    """verify's findings for the letter, and the numbers of the versions each query it sent
    for versions' documents asked for."""
    pages: list[Any] = []

    def seen(query: Any) -> None:
        if "ydoc_state" in query.query and "letter_version" in query.query:
            pages.append(query.args[1] if len(query.args) > 1 else None)

    async def init(conn: asyncpg.Connection) -> None:
        conn.add_query_logger(seen)

    assert settings.database_url is not None
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2, init=init)
    try:
        return await verify.verify_letter(Sources(settings, log, pg=pool), LETTER), pages
    finally:
        await pool.close()


async def test_many_versions_are_read_a_page_at_a_time(
    settings: Settings, log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    await recorded(log, settings, LETTER, seed=3, steps=120)
    async with open_sources(settings, pg=True) as src:
        await backfill(src, "snapshotter", meter=Meter(every_s=3600))
        rows = await src.pg.fetch(
            "SELECT version_number, log_offset FROM letter_version WHERE letter_id = $1"
            " ORDER BY version_number",
            LETTER,
        )
    assert len(rows) >= 20, len(rows)
    monkeypatch.setattr(verify, "VERSIONS_PAGE", PAGE)

    findings, pages = await _verified(settings, log)
    assert [f for f in findings if not f.ok] == []
    assert f"{len(rows)} version(s) equal the replay at their positions" in findings[0].what
    # Every version's document read once, never more than a page of them per query.
    assert all(page is not None and len(page) <= PAGE for page in pages), pages
    assert sorted(n for page in pages for n in page) == [r["version_number"] for r in rows]
    assert len(pages) == math.ceil(len(rows) / PAGE)

    middle = rows[len(rows) // 2]
    async with open_sources(settings, pg=True) as src:
        await src.pg.execute(
            "UPDATE letter_version SET content = content || ' FORGED'"
            " WHERE letter_id = $1 AND version_number = $2",
            LETTER,
            middle["version_number"],
        )
    findings, _ = await _verified(settings, log)
    what = f"version {middle['version_number']} at position {middle['log_offset']}"
    [forged] = [f.what for f in findings if not f.ok]
    assert forged.startswith(f"{what}: content column differs"), forged
