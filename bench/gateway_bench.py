"""Gateway benchmark: stock Yjs clients in Node against one `steno-collab gateway` process
(embedded log, appends included) and against the reference y-websocket server, same load.

    .venv/bin/python bench/gateway_bench.py --letters 50 --users 10 --rate 5 --duration 20
    .venv/bin/python bench/gateway_bench.py --initial-sync 10000
    .venv/bin/python bench/gateway_bench.py --idle 10000

Prints one JSON line per run; docs/performance.md ("Gateway") records the figures.
"""

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.auth import mint_token  # noqa: E402
from schemas.settings import Settings  # noqa: E402

NODE_MODULES = ROOT / "tests" / "interop" / "node_modules"
REFERENCE = NODE_MODULES / "@y" / "websocket-server" / "src" / "server.js"
CLI = Path(sys.executable).parent / "steno-collab"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Proc:
    """A server process and its CPU/RSS from /proc."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 30)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


async def _wait_http(url: str) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(300):
            try:
                await http.get(url)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


async def start_gateway(data_dir: Path, port: int) -> Proc:
    env = {
        **os.environ,
        "STENO_DATA_DIR": str(data_dir),
        "STENO_MAX_CONNECTIONS_PER_LETTER": "100000",
        "STENO_MAX_CONNECTIONS_PER_USER": "100000",
    }
    for name in ("STENO_REDIS_URL", "STENO_DATABASE_URL", "STENO_LOG_URL"):
        env.pop(name, None)
    proc = await asyncio.create_subprocess_exec(
        str(CLI), "gateway", "--host", "127.0.0.1", "--port", str(port), env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await _wait_http(f"http://127.0.0.1:{port}/healthz")
    return Proc(proc)


async def start_reference(port: int) -> Proc:
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port)}
    proc = await asyncio.create_subprocess_exec(
        "node", str(REFERENCE), env=env, stdout=asyncio.subprocess.DEVNULL
    )
    await _wait_http(f"http://127.0.0.1:{port}/")
    return Proc(proc)


async def create_letters(port: int, count: int, settings: Settings) -> list[str]:
    token = mint_token(settings, "bench", "bench-firm", "service", ttl_s=86400)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as http:
        ids = []
        for i in range(count):
            r = await http.post("/v1/letters", json={"firm_id": "bench-firm", "title": f"L{i}"})
            r.raise_for_status()
            ids.append(r.json()["letter_id"])
    return ids


async def run_load(
    url: str, rooms: list[dict[str, Any]], args: argparse.Namespace
) -> dict[str, Any]:
    plan = {"url": url, "rooms": rooms, "rate": args.rate, "duration_s": args.duration,
            "warmup_s": args.warmup, "drain_s": args.drain}  # fmt: skip
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(plan, f)
    try:
        proc = await asyncio.create_subprocess_exec(
            "node", str(ROOT / "bench" / "gateway_load.js"), f.name,
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await proc.communicate()
    finally:
        os.unlink(f.name)
    return dict(json.loads(out.decode().strip().splitlines()[-1]))


async def measured(server: Proc, load: Any) -> dict[str, Any]:
    cpu0, t0 = server.cpu_s(), time.monotonic()
    result = await load
    elapsed = time.monotonic() - t0
    result["server_cpu_pct_of_core"] = round(100 * (server.cpu_s() - cpu0) / elapsed, 1)
    result["server_rss_mb"] = round(server.rss_mb(), 1)
    return dict(result)


async def bench_gateway(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    settings = Settings()
    port = free_port()
    server = await start_gateway(tmp / "gw", port)
    try:
        letters = await create_letters(port, args.letters, settings)
        rooms = [
            {"room": f"letter-{lid}", "users": [
                {"token": mint_token(settings, f"u{li}-{u}", "bench-firm", ttl_s=86400)}
                for u in range(args.users)
            ]}
            for li, lid in enumerate(letters)
        ]  # fmt: skip
        result = await measured(server, run_load(f"ws://127.0.0.1:{port}/v1", rooms, args))
    finally:
        await server.stop()
    return {"server": "steno gateway (embedded log)", **result}


async def bench_reference(args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    server = await start_reference(port)
    try:
        rooms = [{"room": f"letter-ref-{i}", "users": [{} for _ in range(args.users)]}
                 for i in range(args.letters)]  # fmt: skip
        result = await measured(server, run_load(f"ws://127.0.0.1:{port}", rooms, args))
    finally:
        await server.stop()
    return {"server": "@y/websocket-server 0.1.1 (reference)", **result}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--letters", type=int, default=50)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--rate", type=float, default=5.0, help="updates/s per user")
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--drain", type=float, default=3.0)
    parser.add_argument("--target", choices=["gateway", "reference", "both"], default="both")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.target in ("gateway", "both"):
            print(json.dumps(await bench_gateway(args, Path(tmp))), flush=True)
        if args.target in ("reference", "both"):
            print(json.dumps(await bench_reference(args)), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
