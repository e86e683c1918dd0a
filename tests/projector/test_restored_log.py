"""A log restored from a backup is behind what Redis was folded from: the projector stops and
says so, instead of skipping the records appended up to its old position."""

import asyncio
import shutil
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from eventlog import Log
from eventlog.embedded import EmbeddedLog
from eventlog.embedded_backup import backup
from eventlog.errors import PositionPastEndError
from projector.entry import run
from schemas.events import Topic
from schemas.settings import Settings
from tests.projector.support import OPTIONS, Editor, append, caught_up, created, projector


async def test_a_position_past_the_restored_logs_end_stops_the_projector(
    log: Log, settings: Settings, client: aioredis.Redis, tmp_path: Path
) -> None:
    assert isinstance(log, EmbeddedLog)
    ed = Editor("R1")
    await append(log, settings, [created("R1"), ed.event(ed.paragraph("kept"))])
    backup(log.path, tmp_path / "backup")  # the log as it was then
    await append(log, settings, [ed.event(ed.paragraph("lost"))])
    async with projector(settings, log):
        await caught_up(log, settings, client)  # Redis folded all three

    shutil.copytree(tmp_path / "backup", tmp_path / "restored")
    restored = EmbeddedLog(tmp_path / "restored", settings.partitions, readonly=True)
    await restored.start()
    try:
        with pytest.raises(PositionPastEndError) as stopped:
            await asyncio.wait_for(run(settings, OPTIONS, restored), 20)
        topic = settings.topic(Topic.LETTERS)
        assert (stopped.value.topic, stopped.value.position, stopped.value.end) == (topic, 3, 2)
    finally:
        await restored.close()
