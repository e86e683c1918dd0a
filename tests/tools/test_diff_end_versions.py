"""A diff's ends (`from`, `to` of its JSON, the CLI's `--json` and REST's `/diff` alike) name the
saved version they are: `version` is that version's number when the end is exactly it, null for
an end past it (the letter's records after the version folded on top), never the version such an
end was only replayed from, next to a position that is not the version's."""

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest_asyncio

from eventlog.embedded import EmbeddedLog
from eventlog.factory import topic_retention
from schemas.events import Topic
from schemas.settings import Settings
from tests.snapshotter.scripts import Clock, LetterScript, append
from tests.tools.snapshots import snapshot_all
from tools.diff import diff, resolve_point
from tools.replay import Cut
from tools.sources import Sources

LETTER = "L-ends"


@pytest_asyncio.fixture(loop_scope="session")
async def src(tmp_path: Path, db: str) -> AsyncIterator[Sources]:
    """The letter: created, 3 paragraphs (version 1, autosaved), 2 paragraphs after it."""
    settings = Settings(data_dir=tmp_path, partitions=1, database_url=db, autosave_updates=3)
    clock = Clock()
    log = EmbeddedLog(tmp_path / "log", 1, topic_retention(settings), clock=clock)
    await log.start()
    pg = await asyncpg.create_pool(db, min_size=1, max_size=2)
    try:
        s = LetterScript(LETTER)
        for event in [s.created("alice"), *(s.paragraph("bob", f"p{i}") for i in range(5))]:
            clock.advance(1)
            await append(log, settings.topic(Topic.LETTERS), [event])
        await snapshot_all(settings, log)
        yield Sources(settings, log, pg=pg)
    finally:
        await pg.close()
        await log.close()


async def test_an_end_names_the_version_it_is_only(src: Sources) -> None:
    assert src.pg is not None
    saved = await src.pg.fetchrow(
        "SELECT log_offset, created_at FROM letter_version WHERE letter_id = $1"
        " AND version_number = 1",
        LETTER,
    )
    assert saved["log_offset"] == 4  # created and 3 paragraphs; 2 paragraphs after it
    version_ms = int(saved["created_at"].timestamp() * 1000)
    one = await resolve_point(src, LETTER, "1")

    async def ends(start: Cut, end: Cut) -> list[tuple[int, int | None]]:
        found = (await diff(src, LETTER, start, end)).to_json()
        return [(found[e]["position"], found[e]["version"]) for e in ("from", "to")]

    created = Cut(offset=1)  # its letter.created only: no version before it
    assert await ends(created, one) == [(1, None), (4, 1)]
    assert await ends(created, Cut(at_ms=version_ms)) == [(1, None), (4, 1)]
    # Past it, replayed from it: the position is the end's, the version none.
    assert await ends(one, Cut(at_ms=version_ms + 1000)) == [(4, 1), (5, None)]
    future = resolve_point(src, LETTER, "2999-01-01T00:00:00Z")
    assert await ends(one, await future) == [(4, 1), (6, None)]


async def test_a_version_end_is_that_version_when_a_later_one_shares_its_position(
    src: Sources,
) -> None:
    """Two versions saved at one position (the same text): `--to 1` is version 1, not 2."""
    assert src.pg is not None
    await src.pg.execute(
        "INSERT INTO letter_version (letter_id, version_number, created_at, content, document,"
        " ydoc_state, change_data, log_topic, log_partition, log_offset)"
        " SELECT letter_id, 2, created_at + interval '1 second', content, document, ydoc_state,"
        " change_data, log_topic, log_partition, log_offset FROM letter_version"
        " WHERE letter_id = $1 AND version_number = 1",
        LETTER,
    )
    one, two = await resolve_point(src, LETTER, "1"), await resolve_point(src, LETTER, "2")
    assert one.offset == two.offset == 4
    found = (await diff(src, LETTER, Cut(offset=1), one)).to_json()
    assert (found["to"]["position"], found["to"]["version"]) == (4, 1)
    found = (await diff(src, LETTER, one, two)).to_json()
    assert [(found[e]["position"], found[e]["version"]) for e in ("from", "to")] == [(4, 1), (4, 2)]
