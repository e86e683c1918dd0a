"""`steno-collab projector` and `snapshotter` when their /metrics port cannot be bound (taken by
another process, an address not of this machine): one line naming the setting and the address,
status 1, no traceback, as every other bad setting; nothing they opened before it left open.
The gateway's /metrics is a route of its own HTTP port: nothing of its own to bind."""

import os
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from eventlog.factory import open_log
from projector.entry import run
from projector.settings import ProjectorSettings
from schemas.metrics_http import MetricsBindError
from schemas.settings import Settings
from snapshotter.migrate import migrate
from tests.support import cli_stderr_and_status

NOT_HERE = "192.0.2.1"  # TEST-NET-1 (RFC 5737): no interface of this machine has it


@pytest.fixture
def taken() -> Iterator[int]:
    """A port another process's socket listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


async def _env(tmp_path: Path, redis_db: str, pg_database: str, **steno: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STENO_")}
    env |= {
        "STENO_DATA_DIR": str(tmp_path / "steno"),
        "STENO_PARTITIONS": "1",
        "STENO_JWT_SECRET": secrets.token_hex(32),
        "STENO_REDIS_URL": redis_db,
        "STENO_DATABASE_URL": pg_database,
    }
    # The snapshotter reads the embedded log, written by the gateway: there is one.
    log = open_log(Settings(data_dir=tmp_path / "steno", partitions=1))
    await log.start()
    await log.close()
    await migrate(pg_database)  # ahead: the snapshotter's start says nothing of it
    return env | {f"STENO_{key.upper()}": value for key, value in steno.items()}


@pytest.mark.parametrize("command", ["projector", "snapshotter"])
@pytest.mark.parametrize("given", ["environment", "flag"])
async def test_a_metrics_port_in_use_is_one_line_and_status_1(
    tmp_path: Path, redis_db: str, pg_database: str, taken: int, command: str, given: str
) -> None:
    if given == "flag":
        args, setting = [command, "--metrics-port", str(taken)], "--metrics-port"
        env = await _env(tmp_path, redis_db, pg_database)
    else:
        args, setting = [command], f"STENO_{command.upper()}_METRICS_PORT"
        env = await _env(tmp_path, redis_db, pg_database, **{f"{command}_metrics_port": str(taken)})
    err, status = await cli_stderr_and_status(*args, env=env, timeout=60)
    assert status == 1, err
    assert "Traceback" not in err, err
    [line] = err.splitlines()
    prefix = "projector stopped: " if command == "projector" else "steno-collab snapshotter: "
    says = f"{prefix}cannot serve /metrics on 127.0.0.1:{taken} ({setting}, STENO_HOST): "
    assert says in line, line
    assert "in use" in line, line


@pytest.mark.parametrize("command", ["projector", "snapshotter"])
async def test_a_host_not_of_this_machine_is_one_line_and_status_1(
    tmp_path: Path, redis_db: str, pg_database: str, command: str
) -> None:
    env = await _env(tmp_path, redis_db, pg_database, host=NOT_HERE)
    err, status = await cli_stderr_and_status(command, "--metrics-port", "9", env=env, timeout=60)
    assert status == 1, err
    assert "Traceback" not in err, err
    [line] = err.splitlines()
    assert f"cannot serve /metrics on {NOT_HERE}:9 (--metrics-port, STENO_HOST): " in line, line


async def test_the_projector_closes_what_it_opened_when_its_port_is_taken(
    tmp_path: Path, redis_db: str, taken: int
) -> None:
    settings = Settings(data_dir=tmp_path / "steno", partitions=1, redis_url=redis_db)
    with pytest.raises(MetricsBindError):
        await run(settings, ProjectorSettings(metrics_port=taken))
    log = open_log(settings)  # the writer lock is free again: the projector closed its log
    await log.start()
    await log.close()
