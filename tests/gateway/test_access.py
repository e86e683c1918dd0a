"""Which firm a letter belongs to (gateway/access.py): a letter no projection holds yet is looked
for in the log only past what the snapshotter's `letters` table covers."""

from pathlib import Path

import asyncpg

from eventlog.factory import open_log
from eventlog.records import Entry, Log
from gateway.access import Access, LetterMeta
from schemas import LetterCreated, Topic, encode_event, new_event
from schemas.events import SNAPSHOTTER_GROUP
from schemas.ids import uuid7
from schemas.settings import Settings
from snapshotter.migrate import migrate


async def _create(log: Log, settings: Settings, title: str) -> LetterMeta:
    """A `letter.created` in the log, as the REST create appends it."""
    letter_id = uuid7()
    payload = LetterCreated(letter_id=letter_id, firm_id="firm-a", title=title, created_by="u1")
    key, value, headers = encode_event(new_event(letter_id, payload, firm="firm-a", user="u1"))
    await log.append(settings.topic(Topic.LETTERS), key, [Entry(value, headers)])
    return LetterMeta(letter_id, "firm-a", title)


async def test_an_unknown_letter_is_looked_for_only_past_what_the_snapshotter_covers(
    tmp_path: Path, pg_database: str
) -> None:
    await migrate(pg_database)
    pg = await asyncpg.create_pool(pg_database, min_size=1, max_size=2)
    settings = Settings(data_dir=tmp_path / "steno", partitions=1)
    log = open_log(settings)
    await log.start()
    try:
        topic = settings.topic(Topic.LETTERS)
        # Below the snapshotter's position but not in its table (as a record it quarantined):
        # a scan that started at the partition's beginning would find it.
        covered = await _create(log, settings, "covered")
        position = (await log.end_offsets(topic))[0]
        await pg.execute(
            "INSERT INTO consumer_positions (consumer_group, topic, partition, next_offset)"
            " VALUES ($1, $2, 0, $3)",
            SNAPSHOTTER_GROUP,
            topic,
            position,
        )
        fresh = await _create(log, settings, "fresh")  # not folded yet: only the log has it

        access = Access(settings, log, pg=pg)
        assert await access.lookup(fresh.letter_id) == fresh  # read-your-writes
        assert await access.lookup(covered.letter_id) is None  # records below were not read
        assert await access.lookup(uuid7()) is None

        # A position past the log's end is another log's (a restored database): scan it all.
        await pg.execute("UPDATE consumer_positions SET next_offset = $1", position + 1000)
        assert await Access(settings, log, pg=pg).lookup(covered.letter_id) == covered
        # No position (no snapshotter yet), or no PostgreSQL at all: the same.
        await pg.execute("DELETE FROM consumer_positions")
        assert await Access(settings, log, pg=pg).lookup(covered.letter_id) == covered
        assert await Access(settings, log).lookup(covered.letter_id) == covered
    finally:
        await log.close()
        await pg.close()
