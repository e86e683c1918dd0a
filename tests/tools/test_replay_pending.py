"""Replay folds the log in chunks; an update logged before the one it depends on (another
producer, a restored or hand-repaired log) must survive a chunk boundary in between, giving the
document every consumer holds whatever the boundaries."""

from pathlib import Path

import pytest
import redis.asyncio as aioredis

from eventlog.factory import open_log
from schemas.settings import Settings
from tests.projector.support import Editor, append, caught_up, created, projector
from tools import replay as replay_module
from tools.replay import replay
from tools.sources import Sources
from tools.verify import verify_letter


def out_of_order(letter_id: str) -> tuple[Editor, list[bytes]]:
    """hello, then " world", then "!!!" (which depends on " world"): logged as 0, 2, 1."""
    ed = Editor(letter_id)
    hello, world, bang = ed.paragraph("hello"), ed.type(0, " world"), ed.type(0, "!!!")
    return ed, [hello, bang, world]


async def test_a_chunk_boundary_between_an_update_and_its_dependency_keeps_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(data_dir=tmp_path / "steno", partitions=1, database_url=None)
    ed, updates = out_of_order("L-ooo")
    log = open_log(settings)
    await log.start()
    try:
        await append(log, settings, [created("L-ooo"), *map(ed.event, updates)])
        whole = await replay(Sources(settings, log), "L-ooo")
        monkeypatch.setattr(replay_module, "FOLD_CHUNK", 2)  # a boundary before " world"
        chunked = await replay(Sources(settings, log), "L-ooo")
    finally:
        await log.close()
    assert whole.snapshot.content == "hello world!!!"
    assert chunked.snapshot.content == "hello world!!!"
    assert chunked.updates == 3


async def test_verify_finds_the_projection_equal_to_the_replay(
    tmp_path: Path, redis_db: str
) -> None:
    settings = Settings(
        data_dir=tmp_path / "steno", partitions=1, redis_url=redis_db, database_url=None
    )
    ed, (hello, bang, world) = out_of_order("L-ooo")
    log = open_log(settings)
    await log.start()
    client = aioredis.Redis.from_url(redis_db)
    try:
        async with projector(settings, log):
            await append(log, settings, [created("L-ooo"), ed.event(hello), ed.event(bang)])
            await caught_up(log, settings, client)
            pending = await verify_letter(Sources(settings, log, client), "L-ooo")
            await append(log, settings, [ed.event(world)])
            await caught_up(log, settings, client)
        settled = await verify_letter(Sources(settings, log, client), "L-ooo")
    finally:
        await client.aclose()
        await log.close()
    assert [f.line() for f in pending + settled if not f.ok] == []
    assert len(settled) == 1 and "position 4" in settled[0].what
