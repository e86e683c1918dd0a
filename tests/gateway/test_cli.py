"""`steno-collab gateway` and `steno-collab token` as real processes; SIGTERM drains (1001)."""

import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx

from gateway.errors import GOING_AWAY
from tests.gateway.harness import YClient
from tests.support import eventually, free_port

# The entry point as the console script runs it, importable from the checkout itself.
CLI = [sys.executable, "-c", "from steno_collab.cli import main; main()"]
ROOT = Path(__file__).resolve().parents[2]


async def _run(*args: str, env: dict[str, str]) -> str:
    proc = await asyncio.create_subprocess_exec(
        *CLI, *args, env=env, cwd=ROOT, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    return out.decode().strip()


async def test_gateway_command_serves_and_drains_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "STENO_DATA_DIR": str(tmp_path / "steno"), "STENO_PARTITIONS": "1"}
    env.pop("STENO_REDIS_URL", None)
    env.pop("STENO_DATABASE_URL", None)
    token = await _run("token", "--user", "ann", "--firm", "f1", "--name", "Ann", env=env)
    proc = await asyncio.create_subprocess_exec(
        *CLI, "gateway", "--host", "127.0.0.1", "--port", str(port), env=env, cwd=ROOT,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:

            async def up() -> bool:
                try:
                    return (await http.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(up, timeout=30, interval=0.1)
            r = await http.post(
                "/v1/letters",
                json={"firm_id": "f1", "title": "T", "content": "Hello"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert r.status_code == 201
        letter = r.json()["letter_id"]
        client = await YClient.connect(f"ws://127.0.0.1:{port}/v1/letter-{letter}?token={token}")
        await client.synced.wait()
        proc.send_signal(signal.SIGTERM)
        await client.closed.wait()
        assert client.close_code == GOING_AWAY
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
