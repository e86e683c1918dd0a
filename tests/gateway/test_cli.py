"""`steno-collab gateway` and `steno-collab token` as real processes; SIGTERM drains (1001)."""

import asyncio
import json
import signal
from pathlib import Path

import httpx

from gateway.errors import GOING_AWAY
from tests.cli_env import gateway_process, steno_env
from tests.gateway.harness import YClient
from tests.support import CLI, ROOT


async def _run(*args: str, env: dict[str, str]) -> str:
    proc = await asyncio.create_subprocess_exec(
        *CLI, *args, env=env, cwd=ROOT, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    return out.decode().strip()


async def test_gateway_command_serves_and_drains_on_sigterm(tmp_path: Path) -> None:
    env = steno_env(tmp_path)
    token = await _run("token", "--user", "ann", "--firm", "f1", "--name", "Ann", env=env)
    async with gateway_process(env, asyncio.subprocess.DEVNULL) as (proc, port):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
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


async def test_json_logs_are_one_object_per_line_uvicorns_too_tokens_redacted(
    tmp_path: Path,
) -> None:
    env = steno_env(tmp_path, log_format="json")
    token = await _run("token", "--user", "ann", "--firm", "f1", env=env)
    async with gateway_process(env, asyncio.subprocess.PIPE) as (proc, port):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get("/readyz")).status_code == 200
            assert (await http.get(f"/v1/letters/nope?token={token}")).status_code == 401
        proc.send_signal(signal.SIGTERM)
        assert proc.stderr is not None
        err = (await asyncio.wait_for(proc.stderr.read(), 30)).decode()
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    lines = [json.loads(line) for line in err.splitlines()]  # every line is one object
    assert all({"ts", "level", "logger", "message"} <= set(line) for line in lines)
    access = [line["message"] for line in lines if line["logger"] == "uvicorn.access"]
    assert any("GET /readyz" in m and "200" in m for m in access), access
    asked = [m for m in access if "/v1/letters/nope" in m]
    assert asked and "token=[redacted]" in asked[0] and token not in err
    assert any(line["logger"] == "uvicorn.error" for line in lines)  # start-up and shutdown
    # Uvicorn names no address for the socket we bound: the gateway does.
    listening = f"gateway listening on http://127.0.0.1:{port}"
    assert any(line["message"] == listening for line in lines), lines[:5]
