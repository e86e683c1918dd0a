"""A projector marks the replays it runs (`projector:replays`) and no others: positions it
adopts from another writer end its own replay of that partition, so a commit of its presence
alone (which raises the letters partition's marker while it replays) cannot put a marker back
that another writer's commit has cleared."""

import redis.asyncio as aioredis

from eventlog import Log
from projector.consumer import Projector
from projector.metrics import Metrics
from projector.reload import Versions
from projector.store import Store
from schemas.events import Topic
from schemas.settings import Settings
from tests.projector.support import OPTIONS, Editor, append, created


async def test_adopted_positions_end_its_own_replay(
    log: Log, settings: Settings, client: aioredis.Redis
) -> None:
    await append(log, settings, [created("M1"), Editor("M1").event(Editor("M1").paragraph("a"))])
    store = Store(client, OPTIONS.ttl_s * 1000, OPTIONS.notes_ttl_s * 1000)
    projector = Projector(settings, OPTIONS, log, store, Versions(None), Metrics())
    letters = settings.topic(Topic.LETTERS)
    tp = (letters, log.partition_for(letters, b"M1"))
    await projector._take({tp: None})  # nothing stored: it replays from the start
    assert tp in projector._rebuilds
    await projector._take({tp: 2})  # another writer's position, adopted
    assert tp not in projector._rebuilds
