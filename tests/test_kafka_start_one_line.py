"""A Kafka that cannot be reached at start is one line on stderr, ours (README "Operations"),
as Redis and PostgreSQL are: aiokafka's own complaints while the log connects are held back
(eventlog/kafka_quiet.py `starting`), and only then: a started log's client logs as before."""

import logging
from pathlib import Path

import pytest

from eventlog.factory import open_log
from eventlog.kafka_quiet import STARTING
from schemas.settings import Settings
from tests.cli_env import steno_env
from tests.support import cli_stderr_and_status, free_port


@pytest.mark.parametrize("command", ["gateway", "projector", "snapshotter"])
async def test_an_unreachable_kafka_at_start_is_one_line(tmp_path: Path, command: str) -> None:
    port = free_port()  # nothing listens there: connecting is refused at once
    steno = {"log_url": f"kafka://127.0.0.1:{port}"}
    args = [command]
    if command == "gateway":
        args += ["--port", str(free_port())]
    if command == "projector":  # it refuses to start without Redis (not asked before the log)
        steno["redis_url"] = f"redis://127.0.0.1:{port}/0"
    if command == "snapshotter":  # PostgreSQL is not asked before the log
        steno["database_url"] = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        args.append("--no-migrate")
    err, status = await cli_stderr_and_status(*args, env=steno_env(tmp_path, **steno))
    assert status == 1, err
    assert len(err.splitlines()) == 1, err
    assert f"Kafka: connecting to 127.0.0.1:{port}" in err, err


async def test_a_started_log_lets_aiokafka_speak_again(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    settings = Settings(data_dir=tmp_path, partitions=1, log_url=f"kafka://{kafka_bootstrap}",
                        kafka_idempotence=False)  # fmt: skip
    log = open_log(settings)
    await log.start()
    try:
        loggers = [logging.getLogger(n) for n in logging.root.manager.loggerDict]
        assert not [lg.name for lg in loggers if STARTING in lg.filters]
        assert STARTING.starts == 0
    finally:
        await log.close()
