"""`steno-collab dev --port 0`: the banner names the port the kernel chose, one that answers."""

import asyncio
import os
import re
import signal
from pathlib import Path

import httpx

from tests.dev_cli import DEV, read_banner


async def test_the_banner_names_the_port_bound_for_port_zero(
    service_tmp: Path, redis_db: str, pg_database: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STENO_")}
    env |= {"STENO_REDIS_URL": redis_db, "STENO_DATABASE_URL": pg_database}  # quick to start
    proc = await asyncio.create_subprocess_exec(
        *DEV, "--data-dir", str(service_tmp), "--port", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        banner = await read_banner(proc)
        urls = re.findall(r"http://127\.0\.0\.1:(\d+)/\?as=(\w+)", banner)
        assert [who for _, who in urls] == ["avery", "parker"], banner
        port = int(urls[0][0])
        assert port != 0 and urls[1][0] == str(port), banner
        async with httpx.AsyncClient() as client:
            answer = await client.get(f"http://127.0.0.1:{port}/healthz", timeout=30)
        assert answer.status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0
