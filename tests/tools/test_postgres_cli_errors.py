"""A table dropped from PostgreSQL by hand: `verify` and `backfill` say which and how to rebuild
it from the log, in one line (status 2), not a traceback; `migrate` finds the data dir's
PostgreSQL as the other tools do, instead of asking for STENO_DATABASE_URL; PostgreSQL failing
in the middle of a backfill is one line too (status 1: run it again)."""

import os
from pathlib import Path

import asyncpg
import pytest

from eventlog import Log
from schemas.settings import Settings
from steno_collab.cli import build_parser
from steno_collab.commands import backfill as backfill_command
from tests.support import own_services
from tests.tools.cli import cli_env, run_cli
from tests.tools.snapshots import snapshotted


@pytest.fixture
def log_kind() -> str:
    return "embedded"  # the commands' code is log-agnostic


@pytest.mark.parametrize(
    "command",
    [["verify", "--all"], ["backfill", "all", "--from-beginning", "--reset"]],
    ids=["verify", "backfill-reset"],
)
async def test_a_dropped_table_is_named_in_one_line(
    settings: Settings, log: Log, command: list[str]
) -> None:
    async with snapshotted(settings, log) as pool:
        await pool.execute("DROP TABLE comments")
    code, _, err = await run_cli(cli_env(settings), *command)
    assert code == 2 and "Traceback" not in err, err
    line = err.splitlines()[-1]  # after the projector's progress lines (backfill all)
    assert line.startswith(f"steno-collab {command[0]}: PostgreSQL lacks a table"), err
    assert 'relation "comments" does not exist' in line
    assert "a new database, then `steno-collab migrate`" in line


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STENO_")}
    return env | {"STENO_DATA_DIR": str(data_dir)}


async def test_migrate_uses_the_data_dirs_postgresql(service_tmp: Path) -> None:
    data_dir = service_tmp / "steno"
    code, _, err = await run_cli(_env(data_dir), "migrate")  # nothing there yet
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"steno-collab migrate: no PostgreSQL in the data dir {data_dir}"), err
    assert not data_dir.exists()  # a mistyped dir is not made
    # What `steno-collab dev` holds: the data dir's PostgreSQL (and its lock).
    services = await own_services(data_dir, persistent=False, redis=False)
    try:
        code, out, err = await run_cli(_env(data_dir), "migrate")
        assert code == 0 and "applied 001_initial" in out, err
        conn = await asyncpg.connect(services.database_url)
        try:
            assert await conn.fetchval("SELECT to_regclass('comments')") is not None
        finally:
            await conn.close()
    finally:
        await services.stop()


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.InterfaceError("cannot call Transaction.__aexit__(): the connection is closed"),
        asyncpg.DeadlockDetectedError("deadlock detected"),
    ],
    ids=["connection-closed", "deadlock"],
)
def test_postgresql_failing_mid_backfill_is_one_line_and_status_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], error: Exception
) -> None:
    async def failing(*_: object) -> list[str]:
        raise error

    monkeypatch.setattr(backfill_command, "_backfill", failing)
    args = build_parser().parse_args(["backfill", "snapshotter"])
    assert args.func(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(error) in err, err
    assert err.startswith("steno-collab backfill: PostgreSQL: ")
    assert err.endswith("run the same command again to continue\n")
