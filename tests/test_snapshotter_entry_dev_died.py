"""`dev` with its embedded PostgreSQL killed, when a service (the snapshotter, say) fails on the
lost connection before the server watcher's next look: the ERROR still names the server that
died with its log's tail (README "Embedded services"), not the service's error."""

import asyncio
import logging
import os
import signal
from pathlib import Path

import asyncpg
import pytest

from eventlog.factory import open_log
from eventlog.records import Log
from schemas.settings import Settings
from steno_collab.commands.dev import run_until_stopped
from tests.support import own_services


async def test_a_service_failing_first_does_not_hide_the_dead_server(
    service_tmp: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    embedded = await own_services(service_tmp, persistent=False, redis=False)
    settings = Settings(data_dir=service_tmp, partitions=1, database_url=embedded.database_url)
    log = open_log(settings)
    await log.start()
    connected = asyncio.Event()

    async def snapshotter(settings: Settings, _: Log) -> None:
        # Fails as soon as PostgreSQL does: well before the watcher's next look (1 s).
        conn = await asyncpg.connect(settings.database_url)
        connected.set()
        while True:
            await conn.fetchval("SELECT 1")
            await asyncio.sleep(0.005)

    async def kill_postgres() -> int:
        await connected.wait()
        pid = embedded.pids["postgres"]
        os.kill(pid, signal.SIGKILL)
        return pid

    try:
        killing = asyncio.create_task(kill_postgres())
        with caplog.at_level(logging.ERROR):
            code = await run_until_stopped(
                settings, log, asyncio.Event(), [("snapshotter", snapshotter)], embedded
            )
        pid = await killing
    finally:
        await log.close()
        await embedded.stop()
    assert code == 1
    # Ours only: a Kafka client another test of this worker left retrying a broker it stopped
    # logs aiokafka's ERRORs (once per 30 s: eventlog/kafka_quiet.py) whenever it likes.
    errors = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.ERROR and not r.name.startswith("aiokafka")
    ]
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"embedded postgres (pid {pid}) exited unexpectedly: killed by")
    assert "last lines of" in errors[0]
    assert "stopped unexpectedly" not in capsys.readouterr().err
