"""A gateway starting while a projector or snapshotter creates the embedded log (holding its
writer lock for that moment) waits for the lock rather than exiting (eventlog.factory)."""

import asyncio
import os
import sqlite3
from pathlib import Path

import pytest

from eventlog.embedded import LOCK_NAME
from eventlog.embedded_store import DB_NAME, lock_writer
from eventlog.errors import WriterLockHeld
from eventlog.factory import open_embedded_reader, start_writer
from schemas.settings import LOG_FOLDER, Settings


def _held(data_dir: Path) -> int:
    folder = data_dir / LOG_FOLDER
    folder.mkdir(parents=True)
    return lock_writer(folder / LOCK_NAME)  # as another process creating the log holds it


async def test_a_writer_waits_for_a_lock_held_a_moment(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, partitions=1)
    fd = _held(tmp_path)
    asyncio.get_running_loop().call_later(0.3, os.close, fd)  # the creator is done
    log = await start_writer(settings)
    await log.close()


async def test_a_lock_held_for_good_is_refused_naming_the_holder(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, partitions=1)
    fd = _held(tmp_path)
    try:
        with pytest.raises(WriterLockHeld, match=rf"pid {os.getpid()}.*another STENO_DATA_DIR"):
            await start_writer(settings, wait_s=0.3)
    finally:
        os.close(fd)


async def test_a_reader_waits_for_a_log_its_creator_has_not_finished(tmp_path: Path) -> None:
    # The database file made, its tables not yet (another process midway through creating it).
    settings = Settings(data_dir=tmp_path, partitions=1)
    (tmp_path / LOG_FOLDER).mkdir()
    sqlite3.connect(tmp_path / LOG_FOLDER / DB_NAME).close()
    opening = asyncio.create_task(open_embedded_reader(settings))
    await asyncio.sleep(0)  # its first try: refused, the file there
    writer = await start_writer(settings)  # the creator finishes
    try:
        reader = await asyncio.wait_for(opening, timeout=10)
        await reader.close()
    finally:
        await writer.close()
