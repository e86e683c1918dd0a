"""Services started on a free port (the embedded supervisor, steno_collab/embedded.py, which
`dev` and the tests use; tests/support.py `spawn_listening`): ready means our own process
answers there, not that something answers.
`free_port` releases the port it found, and with two test workers the other one's service can
bind it first: ours then fails to bind, while the other answers its readiness check (and then
the test's requests)."""

import asyncio
import os
import secrets
from collections.abc import Callable
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis

from steno_collab import embedded
from tests import support
from tests.support import (
    CLI,
    ROOT,
    gateway_ready,
    own_postgres,
    own_services,
    spawn_listening,
)


def taken_first(taken: int) -> Callable[[], int]:
    """A `free_port` whose first answer is `taken`: what another worker's service bound in
    the meantime."""
    ports = iter([taken])
    real = support.free_port
    return lambda: next(ports, 0) or real()


async def test_a_redis_that_could_not_bind_its_port_is_not_taken_for_ready(
    redis_url: str, service_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = int(redis_url.rsplit(":", 1)[1].split("/")[0])  # the session's Redis answers PING
    monkeypatch.setattr(embedded, "free_port", taken_first(taken))
    svc = await own_services(service_tmp, persistent=False, postgres=False)
    try:
        client = aioredis.Redis.from_url(svc.redis_url)
        try:
            info = await client.info("server")
        finally:
            await client.aclose()
        assert info["process_id"] == svc.pids["redis"]  # its URL reaches the server it started
    finally:
        await svc.stop()


async def test_a_postgres_that_could_not_bind_its_port_is_not_taken_for_ready(
    pg_dsn: str, service_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = int(pg_dsn.rsplit(":", 1)[1].split("/")[0])  # the session's PostgreSQL answers
    monkeypatch.setattr(embedded, "free_port", taken_first(taken))
    pg = await own_postgres(service_tmp / "pg")
    try:
        assert pg.port != taken
        conn = await asyncpg.connect(pg.dsn(), timeout=5)
        try:
            found = await conn.fetchval("SHOW data_directory")
        finally:
            await conn.close()
        assert Path(found) == (service_tmp / "pg").resolve()  # the server it started
    finally:
        await pg.stop()


async def _answer_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def test_a_gateway_that_could_not_bind_its_port_is_not_taken_for_ready(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    foreign = await asyncio.start_server(_answer_ok, "127.0.0.1", 0)  # 200 to every request
    taken = int(foreign.sockets[0].getsockname()[1])
    monkeypatch.setattr(support, "free_port", taken_first(taken))
    env = {k: v for k, v in os.environ.items() if not k.startswith("STENO_")}
    env |= {"STENO_DATA_DIR": str(tmp_path), "STENO_JWT_SECRET": secrets.token_hex(32)}

    async def start(port: int) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            *CLI, "gateway", "--host", "127.0.0.1", "--port", str(port), env=env, cwd=ROOT,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip

    try:
        proc, port = await spawn_listening(start, gateway_ready)
        try:
            assert port != taken  # the foreign 200 was not taken for the gateway's
            async with httpx.AsyncClient() as http:
                r = await http.get(f"http://127.0.0.1:{port}/healthz")
            assert r.content and r.json() == {"status": "ok"}  # the gateway answers there
        finally:
            proc.terminate()
            await proc.wait()
    finally:
        foreign.close()
        await foreign.wait_closed()
