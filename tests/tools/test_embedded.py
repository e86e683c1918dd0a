"""Embedded mode: the commands find the Redis and PostgreSQL that a running `steno-collab dev`
started under the data dir (through their pid files) and read the log it writes; with `dev`
stopped, they start the data dir's servers themselves."""

import asyncio
import os
import re
import signal
from pathlib import Path

import pytest

from eventlog.factory import open_log
from schemas.settings import Settings
from snapshotter.migrate import migrate
from tests.support import own_services
from tests.tools.cli import run_cli
from tests.tools.scripted import LETTER, scripted
from tools.sources import SourceError, running_urls


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


async def test_a_dead_server_of_a_running_dev_is_named_not_taken_for_none(
    service_tmp: Path,
) -> None:
    """`dev` holds the data dir but its Redis or PostgreSQL died (it exits soon after): the
    tools say so, rather than "set STENO_REDIS_URL" as if there were none."""
    data_dir = service_tmp / "steno"
    services = await own_services(data_dir, persistent=False)  # as `dev`: this process
    settings = Settings(data_dir=data_dir)
    try:
        await kill_unreaped(services.pids["redis"])
        redis_dead = (
            f"the embedded Redis of the running `steno-collab dev` (pid {os.getpid()}) is not"
            " running: restart it"
        )
        with pytest.raises(SourceError, match=re.escape(redis_dead)):
            running_urls(data_dir.resolve(), settings)
        env = {k: v for k, v in os.environ.items() if not k.startswith("STENO_")}
        env |= {"STENO_DATA_DIR": str(data_dir)}
        code, _, err = await run_cli(env, "verify", "--all")
        assert (code, err.strip()) == (2, f"steno-collab verify: {redis_dead}")
        log = open_log(settings)  # a log for the tools that read it and PostgreSQL alone
        await log.start()
        await log.close()
        for command in (["replay", "L-none"], ["diff", "L-none", "--from", "1", "--to", "2"]):
            code, _, err = await run_cli(env, *command)  # Redis is not theirs
            assert code != 0 and "Redis" not in err and err.count("\n") == 1, (command, err)
        await kill_unreaped(services.pids["postgres"])
        with pytest.raises(SourceError, match=r"embedded PostgreSQL .* is not running"):
            running_urls(data_dir.resolve(), settings)
        code, _, err = await run_cli(env, "migrate")  # one line, as an unreachable PostgreSQL
        assert code == 1 and "embedded PostgreSQL of the running" in err and "\n" not in err.strip()
    finally:
        await services.stop()


async def kill_unreaped(pid: int) -> None:
    """SIGKILL our child `pid` and wait until it has died, leaving it a zombie (as the tools
    can meet it: its parent, `dev`, has not yet noticed)."""
    os.kill(pid, signal.SIGKILL)
    await asyncio.to_thread(os.waitid, os.P_PID, pid, os.WEXITED | os.WNOWAIT)
