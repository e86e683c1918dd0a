"""`steno-collab dev`: starts what exists, refuses a second start, stops cleanly on signals."""

import asyncio
import json
import os
import signal
import socket
from pathlib import Path
from typing import Any, cast

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis

from eventlog.records import Log
from schemas.settings import Settings
from steno_collab.commands import dev
from steno_collab.services import bind
from tests.dev_cli import DEV, banner_url, read_banner
from tests.pids import processes_in
from tests.support import free_port


async def start_dev(data_dir: Path, port: int | None = None) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STENO_")}
    return await asyncio.create_subprocess_exec(
        *DEV,
        "--data-dir",
        str(data_dir),
        "--port",
        str(port or free_port()),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_dev_runs_embedded_services_and_stops_on_signal(
    service_tmp: Path, sig: signal.Signals
) -> None:
    proc = await start_dev(service_tmp)
    try:
        banner = await read_banner(proc)
        redis_url, pg_url = banner_url(banner, "redis"), banner_url(banner, "postgresql")
        client = aioredis.Redis.from_url(redis_url)
        assert await client.ping()
        await client.aclose()
        conn = await asyncpg.connect(pg_url)
        assert await conn.fetchval("SELECT 1") == 1
        await conn.close()
        assert (service_tmp / "log").is_dir()
    finally:
        proc.send_signal(sig)
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0
    assert b"stopped" in out
    assert processes_in(service_tmp) == []


async def test_second_dev_on_same_data_dir_exits_without_touching_it(service_tmp: Path) -> None:
    first = await start_dev(service_tmp)
    try:
        await read_banner(first)
        before = listing(service_tmp)
        second = await start_dev(service_tmp)
        _, err = await asyncio.wait_for(second.communicate(), 60)
        assert second.returncode == 1
        assert f"in use by another steno-collab process (pid {first.pid})" in err.decode()
        assert listing(service_tmp) == before
        assert (service_tmp / "services.lock").read_text() == str(first.pid)
    finally:
        first.send_signal(signal.SIGTERM)
        await asyncio.wait_for(first.communicate(), 60)
    assert first.returncode == 0


def test_the_port_takes_connections_as_soon_as_it_is_bound() -> None:
    """The banner names the address before the gateway serves: a client that comes at once
    must wait in the backlog, not be refused (seen: the first request of a test, under load)."""
    sock = bind("127.0.0.1", 0)
    try:
        with socket.create_connection(sock.getsockname(), timeout=5):
            pass
    finally:
        sock.close()


async def test_port_in_use_is_a_clear_message_and_touches_nothing(service_tmp: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        data_dir = service_tmp / "data"
        proc = await start_dev(data_dir, port)
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in err.decode()
    assert not data_dir.exists()  # nothing started, nothing written


async def test_services_are_cancelled_on_stop_and_a_crash_stops_all() -> None:
    cancelled: list[str] = []

    async def forever(settings: Settings, log: Log) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.append("forever")

    async def crash(settings: Settings, log: Log) -> None:
        raise RuntimeError("boom")

    log = cast(Log, None)
    stop = asyncio.Event()
    running = asyncio.create_task(
        dev.run_until_stopped(Settings(), log, stop, [("forever", forever)])
    )
    await asyncio.sleep(0)  # let the service start before the stop signal
    stop.set()
    assert await running == 0
    assert cancelled == ["forever"]

    services: list[tuple[str, Any]] = [("forever", forever), ("crash", crash)]
    assert await dev.run_until_stopped(Settings(), log, asyncio.Event(), services) == 1
    assert cancelled == ["forever", "forever"]


async def test_dev_on_external_stores_hides_their_passwords_in_the_banner(
    service_tmp: Path, redis_db: str, pg_database: str
) -> None:
    # The test PostgreSQL trusts local connections: any password is accepted, and must not show.
    dsn = pg_database.replace("postgres@", "postgres:hunter2@", 1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("STENO_")}
    env |= {"STENO_REDIS_URL": redis_db, "STENO_DATABASE_URL": dsn}
    proc = await asyncio.create_subprocess_exec(
        *DEV, "--data-dir", str(service_tmp), "--port", str(free_port()),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        banner = await read_banner(proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.communicate(), 60)
    assert "hunter2" not in banner
    assert f"postgresql  {dsn.replace('hunter2', '***')}  (external)" in banner
    assert f"redis       {redis_db}  (external)" in banner


async def test_dev_logs_as_the_log_settings_say(
    service_tmp: Path, redis_db: str, pg_database: str
) -> None:
    """STENO_LOG_FORMAT=json: what dev's services log comes on stderr as one JSON object per
    line, at STENO_LOG_LEVEL (INFO: the projector's partition assignment is among them, and
    uvicorn's access records, the token in a URL redacted)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STENO_")}
    env |= {"STENO_REDIS_URL": redis_db, "STENO_DATABASE_URL": pg_database}
    env |= {"STENO_LOG_FORMAT": "json", "STENO_LOG_LEVEL": "INFO"}
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        *DEV, "--data-dir", str(service_tmp), "--port", str(port),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert proc.stderr is not None
    records: list[dict[str, Any]] = []
    try:
        await read_banner(proc)
        async with httpx.AsyncClient() as client:
            url = f"http://127.0.0.1:{port}/v1/letters?token=not-a-secret"
            assert (await client.get(url)).status_code == 401
        while not (
            any(r["logger"] == "projector.consumer" for r in records)
            and any(r["logger"] == "uvicorn.access" for r in records)
        ):
            line = await asyncio.wait_for(proc.stderr.readline(), 60)
            assert line, f"dev's stderr ended: {records}"
            records.append(json.loads(line))
    finally:
        proc.send_signal(signal.SIGTERM)
        _, rest = await asyncio.wait_for(proc.communicate(), 60)
    records += [json.loads(line) for line in rest.decode().splitlines()]
    assert proc.returncode == 0
    for record in records:
        assert {"ts", "level", "logger", "message"} <= set(record), record
        assert record["level"] in {"INFO", "WARNING", "ERROR"}, record
    assert any(r["message"].startswith("assigned") for r in records), records
    (access,) = [r for r in records if r["logger"] == "uvicorn.access"]
    assert "/v1/letters?token=" in access["message"] and "401" in access["message"], access
    assert "not-a-secret" not in json.dumps(records)
