"""`verify` says when a rebuild has not finished, and exits 1: a store a rebuild left holding part
of the log (an interrupted `backfill ... --reset`, a projector replay under way, a PostgreSQL
made again that the snapshotter has not folded) compares "ok" letter by letter, up to its
position, and the runbook's confirming step would pass over it."""

import pytest

from eventlog import Log
from schemas.events import SNAPSHOTTER_GROUP
from schemas.rebuilds import MARKER_GROUP, PROJECTOR_REPLAYS, PROJECTOR_RESET, SNAPSHOTTER_RESET
from schemas.settings import Settings
from tests.tools.cli import cli_env, run_cli
from tests.tools.scripted import scripted
from tools.backfill import backfill
from tools.progress import Meter
from tools.sources import open_sources


@pytest.fixture
def log_kind() -> str:
    return "embedded"


async def test_unfinished_rebuilds_are_named_and_fail_verify(settings: Settings, log: Log) -> None:
    await scripted(log, settings)
    async with open_sources(settings, redis=True, pg=True) as src:
        assert src.redis is not None and src.pg is not None
        await backfill(src, "all", meter=Meter(every_s=3600))
        env = cli_env(settings)
        code, out, err = await run_cli(env, "verify", "--all", "--quiet")
        assert code == 0 and "unfinished" not in out, out + err

        await src.redis.set(PROJECTOR_RESET, "rebuilding")
        await src.redis.hset(PROJECTOR_REPLAYS, "letters:0", 12)
        await src.pg.execute(
            "INSERT INTO consumer_positions (consumer_group, topic, partition, next_offset)"
            " VALUES ($1, $2, $3, 0)",
            MARKER_GROUP,
            *SNAPSHOTTER_RESET,
        )
        await src.pg.execute(
            "DELETE FROM consumer_positions WHERE consumer_group = $1", SNAPSHOTTER_GROUP
        )
        code, out, err = await run_cli(env, "verify", "--all", "--quiet")
        assert code == 1, out + err
        assert "UNFINISHED redis: a projector reset rebuild (rebuilding) did not finish" in out
        assert "UNFINISHED redis: the projector is replaying letters:0 up to offset 12" in out
        assert "UNFINISHED postgres: a reset of the snapshotter's tables" in out
        # The reset emptied the positions: said by its line alone (test_verify_reset_once.py).
        assert "UNFINISHED postgres: the snapshotter has folded nothing of" not in out
        assert "3 unfinished rebuild(s)" in out, out


async def test_an_empty_redis_is_unfinished_an_expired_letter_is_not(
    settings: Settings, log: Log
) -> None:
    """With the projector never run (or Redis wiped while it was down) every letter is "not in
    Redis", as a letter whose keys expired is: the projector's positions (no TTL) tell them
    apart."""
    await scripted(log, settings)
    env = cli_env(settings)
    async with open_sources(settings, redis=True, pg=True) as src:
        assert src.redis is not None
        await backfill(src, "snapshotter", meter=Meter(every_s=3600))
        code, out, err = await run_cli(env, "verify", "--all")
        assert code == 1, out + err
        assert "ok       scripted redis: not in Redis" in out, out
        topic = src.letters_topic
        assert f"UNFINISHED redis: the projector has folded nothing of {topic}/0 yet" in out
        assert "1 unfinished rebuild(s)" in out, out

        await backfill(src, "projector", meter=Meter(every_s=3600))
        expired = [k async for k in src.redis.scan_iter("*scripted*")]  # its TTL ran out
        await src.redis.delete(*expired)
        code, out, err = await run_cli(env, "verify", "--all")
        assert code == 0, out + err
        assert "ok       scripted redis: not in Redis (expired" in out, out
