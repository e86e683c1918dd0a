"""The snapshotter's /metrics: commits, rows and lag follow what it folds; while PostgreSQL is
down the lag rises and retries are counted; the port closes with the service."""

import asyncio
import logging
import os
import signal
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest

from eventlog.embedded import EmbeddedLog
from eventlog.factory import open_log
from schemas.settings import Settings
from snapshotter.service import serve
from tests.snapshotter.conftest import LETTERS
from tests.snapshotter.metrics_scrape import Samples, scrape, serving
from tests.snapshotter.pg_outage import shut_down, start_again
from tests.snapshotter.scripts import LetterScript, append
from tests.support import eventually, free_port, own_postgres, spawn_listening

CLI = [sys.executable, "-c", "from steno_collab.cli import main; main()"]


def lag(samples: Samples, partition: int) -> float | None:
    return samples.get(
        ("snapshotter_lag_records", (("partition", str(partition)), ("topic", LETTERS)))
    )


def total(samples: Samples, name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


async def test_metrics_follow_commits_rows_and_lag(
    make_settings: Callable[..., Settings],
    elog: EmbeddedLog,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="snapshotter")
    port = free_port()
    task = asyncio.create_task(serve(make_settings(), elog, metrics_port=port))
    try:
        await serving(task, caplog)
        await append(elog, LETTERS, [LetterScript(f"L{i}").created() for i in range(4)])

        async def folded(letters: int) -> Samples | None:
            samples = await scrape(port)
            rows = samples.get(("snapshotter_rows_written_total", (("table", "letters"),)), 0)
            caught_up = lag(samples, 0) == 0 and lag(samples, 1) == 0
            return samples if rows == letters and caught_up else None

        first = await eventually(lambda: folded(4), timeout=30, interval=0.1)
        assert first[("snapshotter_commits_total", ())] >= 1
        assert total(first, "snapshotter_rows_written_total") > 4  # audit rows, states
        assert first[("snapshotter_last_commit_timestamp_seconds", ())] > 0
        assert first[("snapshotter_cached_letters", ())] == 4
        assert first[("snapshotter_quarantined_records_total", ())] == 0
        assert total(first, "snapshotter_retries_total") == 0

        await append(elog, LETTERS, [LetterScript("L9").created()])
        second = await eventually(lambda: folded(5), timeout=30, interval=0.1)
        commits = ("snapshotter_commits_total", ())
        assert second[commits] > first[commits]
        assert second[("snapshotter_cached_letters", ())] == 5
        assert f"snapshotter metrics on http://127.0.0.1:{port}/metrics" in caplog.text
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    with pytest.raises(urllib.error.URLError):  # the service is gone: so are its metrics
        await scrape(port)


@pytest.mark.parametrize("port", [None, 0])
async def test_no_port_serves_nothing(
    make_settings: Callable[..., Settings],
    elog: EmbeddedLog,
    caplog: pytest.LogCaptureFixture,
    port: int | None,
) -> None:
    """`dev` calls `serve` without a port; `STENO_SNAPSHOTTER_METRICS_PORT=0` turns it off."""
    caplog.set_level(logging.INFO, logger="snapshotter")
    task = asyncio.create_task(serve(make_settings(), elog, metrics_port=port))
    try:
        await eventually(lambda: "snapshotter following" in caplog.text or task.done())
        assert not task.done()
        assert "snapshotter metrics on" not in caplog.text
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_the_port_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STENO_SNAPSHOTTER_METRICS_PORT", raising=False)  # conftest's 0
    assert Settings().snapshotter_metrics_port == 9465
    monkeypatch.setenv("STENO_SNAPSHOTTER_METRICS_PORT", "0")
    assert Settings().snapshotter_metrics_port == 0


async def test_lag_rises_while_postgres_is_down(
    service_tmp: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="snapshotter")
    pg = await own_postgres(service_tmp / "pg")
    dsn = pg.dsn()
    settings = Settings(data_dir=service_tmp / "steno", database_url=dsn, partitions=1)
    log = open_log(settings)
    await log.start()
    port = free_port()
    task = asyncio.create_task(serve(settings, log, metrics_port=port))
    keeper: asyncpg.Connection | None = None
    try:
        await serving(task, caplog)
        await append(log, LETTERS, [LetterScript("L0").created()])

        async def lag_is(n: int) -> Samples | None:
            samples = await scrape(port)
            return samples if lag(samples, 0) == n else None

        before = await eventually(lambda: lag_is(0), timeout=30, interval=0.1)
        assert before[("snapshotter_commits_total", ())] == 1

        keeper = await shut_down(pg, dsn)
        await append(log, LETTERS, [LetterScript(f"L{i}").created() for i in (1, 2, 3)])
        down = await eventually(lambda: lag_is(3), timeout=30, interval=0.1)
        assert down[("snapshotter_commits_total", ())] == 1
        await eventually(lambda: total_retries(port), timeout=30, interval=0.1)
        assert not task.done(), f"the service ended: {task.exception()!r}"

        await start_again(pg, keeper, monkeypatch)
        keeper = None
        after = await eventually(lambda: lag_is(0), timeout=40, interval=0.2)
        assert after[("snapshotter_commits_total", ())] >= 2
        stamp = ("snapshotter_last_commit_timestamp_seconds", ())
        assert after[stamp] > before[stamp]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if keeper is not None:
            await keeper.close()
        await log.close()
        await pg.stop()


async def total_retries(port: int) -> float:
    return total(await scrape(port), "snapshotter_retries_total")


async def test_the_command_serves_metrics_at_its_port_option(
    tmp_path: Path, pg_database: str
) -> None:
    """`steno-collab snapshotter --metrics-port P` (the environment's port is another)."""
    settings = Settings(data_dir=tmp_path / "steno", database_url=pg_database, partitions=1)
    log = open_log(settings)  # written first, as by the gateway: the snapshotter reads it
    await log.start()
    try:
        await append(log, LETTERS, [LetterScript("L-cli").created()])
    finally:
        await log.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STENO_")}
    env |= {
        "STENO_DATA_DIR": str(settings.data_dir),
        "STENO_DATABASE_URL": pg_database,
        "STENO_PARTITIONS": "1",
        "STENO_SNAPSHOTTER_METRICS_PORT": "0",
    }

    async def start(port: int) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            *CLI, "snapshotter", "--metrics-port", str(port), env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip

    proc, port = await spawn_listening(start, timeout=60)  # it migrates before it serves
    try:

        async def committed() -> bool:
            assert proc.returncode is None, "the snapshotter exited"
            try:
                samples = await scrape(port)
            except urllib.error.URLError:  # not serving yet (it migrates first)
                return False
            return samples.get(("snapshotter_commits_total", ())) == 1 and lag(samples, 0) == 0

        await eventually(committed, timeout=60, interval=0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()[-2000:]
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
