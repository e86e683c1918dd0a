"""A table of ours dropped from PostgreSQL by hand: the standalone snapshotter (either entry
point) and `backfill snapshotter` name it in one line with how to rebuild it, status 2 (a
restart cannot mend it), as `dev` does (tests/test_dev_server_died.py)."""

import asyncio
import os
import sys
from pathlib import Path

import asyncpg
import pytest

from eventlog.factory import open_log
from schemas.events import Topic
from schemas.settings import Settings
from snapshotter.migrate import migrate
from tests.snapshotter.scripts import LetterScript, append
from tests.support import CLI, ROOT, cli_stderr_and_status, free_port

HOW = "rebuild it from the log: point STENO_DATABASE_URL at a new database"


async def _without_comments(pg_database: str) -> None:
    await migrate(pg_database)
    conn = await asyncpg.connect(pg_database)
    try:
        await conn.execute("DROP TABLE comments")
    finally:
        await conn.close()


def _env(tmp_path: Path, pg_database: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STENO_")}
    return env | {
        "STENO_DATA_DIR": str(tmp_path / "steno"),
        "STENO_PARTITIONS": "1",
        "STENO_DATABASE_URL": pg_database,
        "STENO_SNAPSHOTTER_METRICS_PORT": "0",  # `python -m` serves the setting's port too
    }


@pytest.mark.parametrize("module", [False, True], ids=["steno-collab", "python-m"])
async def test_a_dropped_table_stops_the_snapshotter_in_one_line_with_status_2(
    tmp_path: Path, pg_database: str, module: bool
) -> None:
    settings = Settings(data_dir=tmp_path / "steno", partitions=1)
    await _without_comments(pg_database)
    letter = LetterScript("L-dropped")
    log = open_log(settings)  # this process writes, as the gateway would
    await log.start()
    try:
        events = [letter.created(), letter.comment("alice", "t1", "c1", "Why?")]
        await append(log, settings.topic(Topic.LETTERS), events)
    finally:
        await log.close()
    command = [sys.executable, "-m", "snapshotter"] if module else [*CLI, "snapshotter"]
    proc = await asyncio.create_subprocess_exec(
        *command, env=_env(tmp_path, pg_database), cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = err.decode()
    assert proc.returncode == 2, text
    assert "Traceback" not in text, text
    last = text.splitlines()[-1]  # after the service's own warnings, if any
    assert last.startswith("steno-collab snapshotter: PostgreSQL lacks a table ("), text
    assert 'relation "comments" does not exist' in last and HOW in last, last


async def test_backfill_snapshotter_names_a_dropped_table_with_nothing_to_fold(
    tmp_path: Path, pg_database: str
) -> None:
    await _without_comments(pg_database)  # and an empty log: no record would meet the table
    log = open_log(Settings(data_dir=tmp_path / "steno", partitions=1))
    await log.start()
    await log.close()
    env = _env(tmp_path, pg_database)
    err, status = await cli_stderr_and_status("backfill", "snapshotter", env=env, timeout=60)
    assert status == 2, err
    [line] = err.splitlines()
    assert line.startswith("steno-collab backfill: PostgreSQL lacks a table ("), err
    assert 'relation "comments" does not exist' in line and HOW in line, line


async def test_python_m_snapshotter_names_unreachable_postgresql_in_one_line(
    tmp_path: Path,
) -> None:
    port = free_port()  # nothing listens there
    env = _env(tmp_path, f"postgresql://postgres:secret@127.0.0.1:{port}/postgres")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "snapshotter", env=env, cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    [line] = err.decode().splitlines()
    assert line.startswith(f"steno-collab snapshotter: PostgreSQL at 127.0.0.1:{port}: "), line
    assert proc.returncode == 1 and "secret" not in line
