"""`steno-collab gateway`, `projector`, `snapshotter` and `dev` when the log or a store cannot
be reached at start: one line on stderr naming the address, exit status 1, no traceback; nothing
left open."""

import asyncio
from pathlib import Path

import pytest

from eventlog.factory import open_log
from schemas.settings import Settings
from schemas.stores import UnreachableError
from steno_collab.commands import gateway
from steno_collab.services import bind
from tests.cli_env import steno_env
from tests.support import CLI, ROOT, cli_stderr_and_status, free_port


def _dead(scheme: str, port: int) -> str:
    return {
        "kafka": f"kafka://127.0.0.1:{port}",
        "redis": f"redis://:secret@127.0.0.1:{port}/0",
        "postgresql": f"postgresql://postgres:secret@127.0.0.1:{port}/postgres",
    }[scheme]


PREFIX = {
    "gateway": "gateway stopped: ",  # logged, as the projector's
    "projector": "projector stopped: ",
    "snapshotter": "steno-collab snapshotter: ",
    "dev": "steno-collab dev: ",
}
KAFKA, REDIS, PG = "Kafka: connecting to ", "Redis at ", "PostgreSQL at "


@pytest.mark.parametrize(
    ("command", "dead", "says"),
    [
        ("gateway", "log_url", KAFKA),
        ("gateway", "redis_url", REDIS),
        ("gateway", "database_url", PG),
        ("projector", "log_url", KAFKA),
        ("projector", "redis_url", REDIS),
        ("snapshotter", "log_url", KAFKA),
        ("snapshotter", "database_url", PG),
        ("dev", "log_url", KAFKA),
    ],
)
async def test_unreachable_at_start_is_one_line_and_status_1(
    tmp_path: Path, command: str, dead: str, says: str
) -> None:
    port = free_port()  # nothing listens there: connecting is refused at once
    scheme = {"log_url": "kafka", "redis_url": "redis", "database_url": "postgresql"}[dead]
    steno = {dead: _dead(scheme, port)}
    args = [command]
    if command == "gateway":  # the port is bound first: not the default one, maybe taken
        args += ["--port", str(free_port())]
    if command == "snapshotter" and dead == "log_url":  # PostgreSQL is not asked before the log
        steno["database_url"] = _dead("postgresql", port)
        args.append("--no-migrate")
    if command == "projector" and dead == "log_url":  # it refuses to start without Redis
        steno["redis_url"] = _dead("redis", port)
    if command == "dev":  # external stores: nothing embedded starts before the log
        steno |= {"redis_url": _dead("redis", port), "database_url": _dead("postgresql", port)}
        args += ["--data-dir", str(tmp_path / "dev"), "--port", str(free_port())]
    err, status = await cli_stderr_and_status(*args, env=steno_env(tmp_path, **steno))
    assert status == 1, err
    assert "Traceback" not in err, err
    ours = err.splitlines()  # aiokafka's own line is silenced while the log starts
    assert len(ours) == 1, err
    assert f"{PREFIX[command]}{says}127.0.0.1:{port}" in ours[0], err
    assert "secret" not in err


async def test_gateway_on_a_taken_port_is_one_line_and_status_1(tmp_path: Path) -> None:
    """As `dev`: the port is bound before the log opens, so a taken one is one line on stderr,
    status 1, and the data directory is not touched (it was uvicorn's status 3 and INFO lines
    after the log and the stores had started)."""
    with bind("127.0.0.1", free_port()) as taken:
        port = taken.getsockname()[1]
        err, status = await cli_stderr_and_status(
            "gateway", "--port", str(port), env=steno_env(tmp_path)
        )
    assert status == 1, err
    assert err.splitlines() == [
        f"steno-collab gateway: port {port} on 127.0.0.1 is already in use (another"
        " steno-collab?); choose another with --port or STENO_PORT"
    ], err
    assert not (tmp_path / "steno").exists()


async def test_gateway_closes_the_started_log_when_a_store_is_unreachable(
    tmp_path: Path,
) -> None:
    dead_pg = _dead("postgresql", free_port())
    settings = Settings(
        data_dir=tmp_path / "steno",
        partitions=1,
        log_url=None,
        redis_url=None,
        database_url=dead_pg,
    )
    sock = bind("127.0.0.1", free_port())
    with pytest.raises(UnreachableError), sock:
        await gateway.serve(settings, sock)
    log = open_log(settings)  # the writer lock is free again: the gateway closed its log
    await log.start()
    await log.close()


@pytest.mark.parametrize("dead", ["redis_url", "database_url"])
async def test_dev_names_an_unreachable_store_before_any_banner(
    tmp_path: Path, redis_db: str, pg_database: str, dead: str
) -> None:
    """External stores are reached before `dev` says it is up: no banner, one line, status 1."""
    port = free_port()
    steno = {"redis_url": redis_db, "database_url": pg_database}
    steno[dead] = _dead("redis" if dead == "redis_url" else "postgresql", port)
    args = ["dev", "--data-dir", str(tmp_path / "dev"), "--port", str(free_port())]
    proc = await asyncio.create_subprocess_exec(
        *CLI, *args, env=steno_env(tmp_path, **steno), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    says = REDIS if dead == "redis_url" else PG
    assert proc.returncode == 1, err
    assert b"running" not in out and b"Press Ctrl-C" not in out, out  # the banner's lines
    lines = err.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"steno-collab dev: {says}127.0.0.1:{port}"), err
    assert b"secret" not in err
