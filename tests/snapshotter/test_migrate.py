"""Migrations: each applied once, in order, in a transaction; idempotent; concurrent-safe."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from snapshotter.migrate import MigrationError, load_migrations, migrate
from steno_collab.cli import main


async def test_migrate_applies_once_and_is_idempotent(pg_database: str) -> None:
    first = await migrate(pg_database)
    assert [m.version for m in first] == [m.version for m in load_migrations()]
    assert await migrate(pg_database) == []
    conn = await asyncpg.connect(pg_database)
    try:
        versions = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
        tables = await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await conn.close()
    assert [r["version"] for r in versions] == [m.version for m in first]
    assert tables == 11  # ten of ours (005: letters_jobs) plus schema_migrations


async def test_concurrent_runners_apply_each_migration_once(pg_database: str) -> None:
    results = await asyncio.gather(*(migrate(pg_database) for _ in range(4)))
    assert sorted(len(applied) for applied in results) == [0, 0, 0, len(load_migrations())]


async def test_a_failing_migration_rolls_back_and_an_edited_one_is_refused(
    pg_database: str, tmp_path: Path
) -> None:
    (tmp_path / "001_a.sql").write_text("CREATE TABLE a (x int);")
    (tmp_path / "002_b.sql").write_text("CREATE TABLE b (x int); SELECT 1/0;")
    with pytest.raises(MigrationError, match="002_b failed and was rolled back") as failed:
        await migrate(pg_database, tmp_path)
    assert isinstance(failed.value.__cause__, asyncpg.DivisionByZeroError)
    conn = await asyncpg.connect(pg_database)
    try:
        assert await conn.fetchval("SELECT to_regclass('b')") is None  # rolled back whole
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == 1
    finally:
        await conn.close()
    (tmp_path / "001_a.sql").write_text("CREATE TABLE a (x bigint);")
    with pytest.raises(MigrationError, match="001_a differs from the one this database applied"):
        await migrate(pg_database, tmp_path)


def test_migration_names_must_be_numbered(tmp_path: Path) -> None:
    (tmp_path / "first.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="NNN_name"):
        load_migrations(tmp_path)


async def test_the_cli_migrates(pg_database: str, capsys: pytest.CaptureFixture[str]) -> None:
    def run() -> None:
        with pytest.raises(SystemExit) as exit_:
            main(["migrate", "--database-url", pg_database])
        assert exit_.value.code == 0

    await asyncio.to_thread(run)
    await asyncio.to_thread(run)
    out = capsys.readouterr().out
    assert "applied 001_initial" in out and "up to date" in out


@pytest.mark.parametrize("command", ["migrate", "snapshotter"])
async def test_an_applied_migration_changed_since_is_one_line_and_status_1(
    pg_database: str, command: str, tmp_path: Path
) -> None:
    """An operator deploying a release whose applied migration differs from the database's
    (here: the database's checksum, as a hand edit of the file would) reads what and why in one
    line, from `migrate` and from the snapshotter's migration at start (it was a traceback)."""
    await migrate(pg_database)
    conn = await asyncpg.connect(pg_database)
    try:
        await conn.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1")
    finally:
        await conn.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STENO_")}
    env |= {"STENO_DATABASE_URL": pg_database, "STENO_DATA_DIR": str(tmp_path / "steno")}
    cli = [sys.executable, "-c", "from steno_collab.cli import main; main()", command]
    done = await asyncio.to_thread(
        subprocess.run, cli, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith(f"steno-collab {command}: migration 001_initial differs"), line
