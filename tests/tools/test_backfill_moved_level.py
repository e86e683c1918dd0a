"""A projector backfill beside the running projector service: each commits the same partitions,
so each finds its positions "moved to N by another writer" now and then, and goes on from there
(the results are right). Beside a backfill that is expected: INFO (the command's output shows
WARNINGs only, up to 9 lines a run before), while in the service it means a second projector on
its partitions: still a WARNING."""

import asyncio
import logging
from collections.abc import Callable

import pytest

from eventlog import Log
from projector.consumer import Projector
from projector.metrics import Metrics
from projector.reload import Versions
from projector.settings import ProjectorSettings
from projector.store import Store
from schemas.events import Topic
from schemas.keys import projector_position_key
from schemas.settings import Settings
from tests.support import eventually
from tests.tools.backfill_logs import fill, typing
from tools import backfill_projector
from tools.sources import Sources, open_sources

MOVED = "moved to"


@pytest.fixture
def log_kind() -> str:
    return "embedded"


def service(src: Sources, store: Store, options: ProjectorSettings) -> Projector:
    return Projector(src.settings, options, src.log, store, Versions(None), Metrics())


@pytest.mark.parametrize(
    ("make", "level"),
    [(backfill_projector.backfilling, logging.INFO), (service, logging.WARNING)],
    ids=["backfill", "service"],
)
async def test_a_position_moved_by_another_writer_is_info_in_a_backfill(
    settings: Settings,
    log: Log,
    caplog: pytest.LogCaptureFixture,
    make: Callable[[Sources, Store, ProjectorSettings], Projector],
    level: int,
) -> None:
    await fill(log, settings, steps=20)
    topic = settings.topic(Topic.LETTERS)
    partitions = {topic: frozenset({0}), settings.topic(Topic.PRESENCE): frozenset({0})}
    async with open_sources(settings, redis=True) as src:
        assert src.redis is not None
        options = ProjectorSettings(metrics_port=None)
        store = Store(src.redis, options.ttl_s * 1000, options.notes_ttl_s * 1000)
        projector = make(src, store, options)
        key = projector_position_key(topic, 0)
        end = (await log.end_offsets(topic))[0]
        worker = asyncio.create_task(projector.work())
        try:
            with caplog.at_level(logging.INFO, logger="projector.consumer"):
                await projector.assigned(partitions)
                await eventually(lambda: src.redis.get(key), 30)  # type: ignore[union-attr]
                await eventually(lambda: _at(src, key, end), 30)  # folded to the end
                # Another writer's commit of the records appended next lands first.
                await src.redis.set(key, end + 1)
                await typing(log, settings, "letter-x", 9)
                moved = await eventually(lambda: _said(caplog), 30)
        finally:
            await projector.revoked(partitions)
            await backfill_projector._stop(worker)
    assert moved.getMessage() == f"position of {topic}/0 moved to {end + 1} by another writer"
    assert moved.levelno == level


async def _at(src: Sources, key: str, end: int) -> bool:
    assert src.redis is not None
    return int(await src.redis.get(key) or 0) == end


def _said(caplog: pytest.LogCaptureFixture) -> logging.LogRecord | None:
    return next((r for r in caplog.records if MOVED in r.getMessage()), None)
