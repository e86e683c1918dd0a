"""A broker that refuses idempotent producers (Tansu) with the default STENO_KAFKA_IDEMPOTENCE:
a configuration the service refuses, so one line and status 2 (README "Operations"), not the
status 1 of an unreachable log that a supervisor restarts in vain."""

import uuid
from pathlib import Path

import pytest

from tests.cli_env import steno_env
from tests.support import cli_stderr_and_status, free_port


@pytest.mark.parametrize("command", ["gateway", "projector", "snapshotter"])
async def test_a_refused_idempotent_producer_is_one_line_and_status_2(
    tmp_path: Path, kafka_bootstrap: str, command: str
) -> None:
    steno = {"log_url": f"kafka://{kafka_bootstrap}", "topic_prefix": f"i{uuid.uuid4().hex[:8]}."}
    args = [command]
    if command == "gateway":
        args += ["--port", str(free_port())]
    if command == "projector":  # it wants a Redis URL; the log is opened (and refused) first
        steno["redis_url"] = f"redis://127.0.0.1:{free_port()}/0"
    if command == "snapshotter":  # as for PostgreSQL's
        steno["database_url"] = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
        args.append("--no-migrate")
    err, status = await cli_stderr_and_status(*args, env=steno_env(tmp_path, **steno))
    assert status == 2, err
    assert len(err.splitlines()) == 1, err
    assert f"steno-collab {command}: Kafka: connecting to {kafka_bootstrap}" in err, err
    assert "STENO_KAFKA_IDEMPOTENCE=false" in err, err
