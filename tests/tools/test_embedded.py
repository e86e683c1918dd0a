"""Embedded mode: the commands find the Redis and PostgreSQL that a running `steno-collab dev`
started under the data dir (through their pid files) and read the log it writes; with `dev`
stopped, they start the data dir's servers themselves."""

import os
from pathlib import Path

import pytest

from eventlog.factory import open_log
from schemas.settings import Settings
from snapshotter.migrate import migrate
from tests.support import own_services
from tests.tools.cli import run_cli
from tests.tools.scripted import LETTER, scripted
from tools.sources import running_urls


@pytest.fixture
def log_kind() -> str:
    return "embedded"


async def test_commands_against_a_running_dev_data_dir(service_tmp: Path) -> None:
    data_dir = service_tmp / "steno"
    # What `steno-collab dev` holds: the data dir's services (and their lock) and the log writer.
    services = await own_services(data_dir, persistent=False)
    try:
        settings = Settings(data_dir=data_dir, partitions=1)
        assert running_urls(data_dir.resolve(), settings) == {
            "redis_url": services.redis_url,
            "database_url": services.database_url,
        }
        await migrate(services.database_url)
        log = open_log(settings)
        await log.start()
        try:
            await scripted(log, settings)
            env = {k: v for k, v in os.environ.items() if not k.startswith("STENO_")}
            env |= {"STENO_DATA_DIR": str(data_dir), "STENO_PARTITIONS": "1"}
            code, out, err = await run_cli(env, "backfill", "all")
            assert code == 0, err
            assert "projector:" in out and "snapshotter:" in out
            code, out, err = await run_cli(env, "verify", "--all")
            assert code == 0 and "verified 1 letter(s): 0 mismatch(es)" in out, out + err
            code, out, _ = await run_cli(env, "replay", LETTER, "--format", "json")
            assert code == 0 and '"base_version": 2' in out  # found the dev's PostgreSQL
        finally:
            await log.close()
    finally:
        await services.stop()
    # `dev` stopped: the command starts the data dir's servers itself, and stops them again.
    code, out, err = await run_cli(env, "replay", LETTER, "--format", "json")
    assert code == 0 and '"base_version": 2' in out, err
    assert running_urls(data_dir.resolve(), Settings(data_dir=data_dir)) == {}
