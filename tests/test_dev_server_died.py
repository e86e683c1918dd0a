"""`steno-collab dev` notices an embedded server dying: one ERROR naming it, its exit status and
its log's tail, everything stopped, exit status 1 (a supervisor restarts it), nothing left."""

import asyncio
import os
import signal
from pathlib import Path

import asyncpg
import httpx

from gateway.auth import mint_token
from schemas.settings import Settings
from tests.dev_cli import DEV, banner_url, read_banner
from tests.pids import processes_in
from tests.support import eventually, free_port, gateway_ready


async def test_dev_exits_1_when_its_embedded_redis_is_killed(service_tmp: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STENO_")}
    env |= {"STENO_LOG_LEVEL": "INFO"}  # the projector says when it has its partitions
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        *DEV, "--data-dir", str(service_tmp), "--port", str(port),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert proc.stderr is not None
    err = b""
    try:
        await read_banner(proc)
        # Running, not starting: a service that cannot connect at its start stops dev anyway.
        while b"projector.consumer assigned" not in err:
            line = await asyncio.wait_for(proc.stderr.readline(), 60)
            assert line, err.decode()
            err += line
        await eventually(lambda: gateway_ready(port), timeout=30)
        redis_pid = int((service_tmp / "redis" / "redis.pid").read_text())
        os.kill(redis_pid, signal.SIGKILL)
        _, rest = await asyncio.wait_for(proc.communicate(), 30)
        err += rest
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.communicate(), 60)
    text = err.decode()
    errors = [line for line in text.splitlines() if " ERROR " in line]
    assert len(errors) == 1, text
    assert f"embedded redis (pid {redis_pid}) exited unexpectedly: killed by SIGKILL" in errors[0]
    assert "Ready to accept connections" in text  # the tail of redis.log, after that line
    assert proc.returncode == 1
    assert processes_in(service_tmp) == []


async def test_dev_says_how_to_rebuild_a_table_dropped_by_hand(service_tmp: Path) -> None:
    """A table of ours dropped from its PostgreSQL stops the snapshotter, and with it `dev`:
    restarting cannot help (migrations are applied once), so status 2 and how to rebuild it
    (re-read RI: status 1 and the exception's repr, a supervisor restarting it for ever)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STENO_")}
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        *DEV, "--data-dir", str(service_tmp), "--port", str(port),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        banner = await read_banner(proc)
        await eventually(lambda: gateway_ready(port), timeout=30)
        pg = await asyncpg.connect(banner_url(banner, "postgresql"))
        try:
            # Made by the snapshotter's migration at its start, which the gateway does not wait
            # for (a CI run dropped it before it was there).
            async def migrated() -> bool:
                return await pg.fetchval("SELECT to_regclass('collaboration')") is not None

            await eventually(migrated, timeout=30)
            await pg.execute("DROP TABLE collaboration")  # the audit trail: every event's row
        finally:
            await pg.close()
        token = mint_token(Settings(dev=True), "svc", "firm-1", "service")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            made = await http.post(
                "/v1/letters", json={"firm_id": "firm-1", "title": "T"},
                headers={"Authorization": f"Bearer {token}"},
            )  # fmt: skip
        assert made.status_code == 201, made.text
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.communicate(), 60)
    last = err.decode().splitlines()[-1]
    assert last.startswith("steno-collab dev: snapshotter: PostgreSQL lacks a table ("), last
    where = await asyncio.to_thread(service_tmp.resolve) / "postgres"
    assert last.endswith(f"rebuild it from the log: stop `dev`, delete {where}, start `dev`")
    assert proc.returncode == 2
    assert processes_in(service_tmp) == []
