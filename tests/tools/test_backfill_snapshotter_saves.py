"""`backfill snapshotter` saves letters' working states as the service does: by its policy
while it runs, and every letter as far as it goes when it ends (an orderly stop), so that the
service then loads them without folding any record again."""

import json

import pytest

from eventlog import Log
from schemas.events import Topic
from schemas.settings import Settings
from tests.tools.backfill_logs import LETTERS, fill, typing
from tools.backfill import backfill
from tools.progress import Meter
from tools.sources import open_sources


@pytest.mark.parametrize("log_kind", ["embedded"])
async def test_backfill_ends_with_every_letter_saved_as_far_as_it_goes(
    settings: Settings, log: Log
) -> None:
    await fill(log, settings)  # sessions that end: saved with their session-end versions
    await typing(log, settings, "letter-c", 20)  # an autosave after 15 updates, then 5 more
    topic = settings.topic(Topic.LETTERS)
    last: dict[str, int] = {}
    for partition, end in (await log.end_offsets(topic)).items():
        for record in await log.read(topic, partition, 0, end):
            last[record.key.decode()] = record.offset
    assert set(last) == set(LETTERS)
    async with open_sources(settings, pg=True) as src:
        await backfill(src, "snapshotter", meter=Meter(every_s=3600))
        rows = await src.pg.fetch("SELECT letter_id, state::text FROM snapshotter_letter_state")
        lagging = await src.pg.fetch("SELECT letter_id FROM snapshotter_unsaved")
    covers = {r["letter_id"]: json.loads(r["state"])["covers"] for r in rows}
    assert covers == {letter_id: offset + 1 for letter_id, offset in last.items()}
    assert lagging == []
