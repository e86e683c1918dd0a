"""Gateway benchmark: stock Yjs clients in Node against one `steno-collab gateway` process
(embedded log, appends included) and against the reference y-websocket server, same load.

    .venv/bin/python bench/gateway_bench.py --letters 50 --users 10 --rate 5 --duration 20 --runs 2
    .venv/bin/python bench/gateway_bench.py --letters 50 --users 10 --rate 5 --duration 20 --lean \
        --tick-ms 1 --runs 3
    .venv/bin/python bench/gateway_bench.py --letters 200 --users 10 --rate 5 --duration 20 --lean \
        --procs 2
    .venv/bin/python bench/gateway_bench.py --letters 50 --users 10 --rate 5 --duration 20 --lean \
        --tick-ms 1 --target gateway --hocuspocus
    .venv/bin/python bench/gateway_bench.py --initial-sync 10000
    .venv/bin/python bench/gateway_bench.py --idle 10000
    .venv/bin/python bench/gateway_bench.py --unheld-reads 20 [--distinct]
    .venv/bin/python bench/gateway_bench.py --rest-writes 4 --updates 500

`--lean` swaps the stock clients for lean ones (raw sockets sending real Yjs updates, reading
deliveries without applying them): at 500 connections the generator then needs about a quarter
of a core instead of a whole one, so the figures are the servers' rather than the generator's
queueing. `--tick-ms 1` sends each update within a millisecond of its due time instead of in
5 ms bursts, arrivals closer to those of independent typists. Lean clients also time their own
update's echo (`ack_ms`): the gateway sends it once the update is in the log. `--hocuspocus`
(with `--lean`, `--target gateway`) has the gateway's clients speak TipTap's Hocuspocus framing
on `/v1/hocuspocus`; their `ack_ms` is then the sync status that acknowledges each update.

Prints one JSON line per run (both servers in turn, alternating who goes first), then the
medians per server; docs/performance.md ("Gateway") records the figures. Set
BENCH_NODE_FLAGS="--cpu-prof --cpu-prof-dir=DIR" to profile the generator and the reference.
"""

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The gateway refuses the public default secret; Settings() here and the gateway share this one.
os.environ.setdefault("STENO_JWT_SECRET", secrets.token_hex(32))

from gateway.auth import mint_token  # noqa: E402
from schemas.settings import Settings  # noqa: E402

NODE_MODULES = ROOT / "tests" / "interop" / "node_modules"
REFERENCE = NODE_MODULES / "@y" / "websocket-server" / "src" / "server.js"
CLI = [sys.executable, "-c", "from steno_collab.cli import main; main()"]
# Extra node flags for the load generator and the reference server, e.g. profiling:
# BENCH_NODE_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof" (NODE_OPTIONS refuses --cpu-prof).
NODE = ["node", *os.environ.get("BENCH_NODE_FLAGS", "").split()]
# A larger young generation: the generator allocates an encoder and a buffer per message, and
# with the default 16 MB semi-space the scavenger took ~12% of its CPU.
LOADGEN = [*NODE, "--max-semi-space-size=64", str(ROOT / "bench" / "gateway_load.js")]


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


async def start_gateway(data_dir: Path, port: int, **settings: str) -> Proc:
    env = {
        **os.environ,
        "STENO_DATA_DIR": str(data_dir),
        "STENO_MAX_CONNECTIONS_PER_LETTER": "100000",
        "STENO_MAX_CONNECTIONS_PER_USER": "100000",
        "STENO_HANDSHAKES_BURST": "1000000",
    }
    for name in ("STENO_REDIS_URL", "STENO_DATABASE_URL", "STENO_LOG_URL"):
        env.pop(name, None)
    env.update({f"STENO_{name.upper()}": value for name, value in settings.items()})
    proc = await asyncio.create_subprocess_exec(
        *CLI, "gateway", "--host", "127.0.0.1", "--port", str(port), env=env, cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await _wait_http(f"http://127.0.0.1:{port}/healthz")
    return Proc(proc)


async def start_reference(port: int) -> Proc:
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port)}
    proc = await asyncio.create_subprocess_exec(
        *NODE, str(REFERENCE), env=env, stdout=asyncio.subprocess.DEVNULL
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
    url: str,
    rooms: list[dict[str, Any]],
    args: argparse.Namespace,
    server: Proc,
    hocuspocus: bool = False,
) -> dict[str, Any]:
    """Run the generator (`args.procs` processes, letters dealt round-robin); the server's CPU
    and the load average cover the measuring window, which all processes start together."""
    plans = []
    for i in range(args.procs):
        plan = {
            "url": url,
            "rooms": rooms[i :: args.procs],
            "rate": args.rate,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "drain_s": args.drain,
            "tick_ms": args.tick_ms,
            "lean": args.lean,
            "hocuspocus": hocuspocus,
            "stagger_s": args.stagger,
        }
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(plan, f)
        plans.append(f.name)
    window: dict[str, tuple[float, float]] = {}
    loads: dict[str, float] = {}
    results: list[dict[str, Any]] = []

    async def follow(proc: asyncio.subprocess.Process, synced: asyncio.Event) -> None:
        assert proc.stdout is not None
        async for line in proc.stdout:
            message = json.loads(line)
            phase = message.get("phase")
            if phase == "synced":
                synced.set()
            elif phase and phase not in window:  # the first process to get there
                window[phase] = (server.cpu_s(), time.monotonic())
                loads[phase] = round(os.getloadavg()[0], 2)
            elif not phase:
                results.append(message)
        await proc.wait()

    procs: list[asyncio.subprocess.Process] = []
    try:
        for plan in plans:
            procs.append(
                await asyncio.create_subprocess_exec(
                    *LOADGEN,
                    plan,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    limit=256 << 20,  # the result line carries every latency sample
                )
            )
        synced = [asyncio.Event() for _ in procs]
        followers = [asyncio.create_task(follow(p, e)) for p, e in zip(procs, synced, strict=True)]
        # A generator that dies before it syncs (no node_modules: "Cannot find module 'ws'",
        # on its stderr) would leave the wait for its "synced" for ever.
        all_synced = asyncio.ensure_future(asyncio.gather(*(e.wait() for e in synced)))
        await asyncio.wait([all_synced, *followers], return_when=asyncio.FIRST_COMPLETED)
        if not all_synced.done():
            all_synced.cancel()
            await asyncio.gather(all_synced, return_exceptions=True)
            codes = [p.returncode for p in procs]
            raise SystemExit(f"the load generator exited before it synced ({codes}): see above")
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            await proc.stdin.drain()
        await asyncio.gather(*followers)
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        for plan in plans:
            os.unlink(plan)
    clients = ("lean" if args.lean else "stock") + (" (hocuspocus framing)" if hocuspocus else "")
    result = {"clients": clients, **_merge(results, args.duration)}
    (cpu0, t0), (cpu1, t1) = window["measuring"], window["done"]
    result["server_cpu_pct_of_core"] = round(100 * (cpu1 - cpu0) / (t1 - t0), 1)
    result["server_rss_mb"] = round(server.rss_mb(), 1)
    result["loadavg_1m_before_after"] = [loads["measuring"], round(os.getloadavg()[0], 2)]
    return result


def _merge(results: list[dict[str, Any]], duration_s: float) -> dict[str, Any]:
    """One result from the generator processes': counts add up, latencies are pooled, and the
    generator's own figures are summed (CPU) or the worst process's (loop delay, late sends)."""
    latencies = sorted(ms for r in results for ms in r["latencies"])
    acks = sorted(ms for r in results for ms in r.get("acks", ()))

    def pct(p: float, samples: list[float] = latencies) -> float | None:
        return samples[min(len(samples) - 1, int(len(samples) * p))] if samples else None

    total = {name: sum(r[name] for r in results) for name in
             ("connections", "sent", "expected_deliveries", "observed", "coalesced",
              "diverged_pairs")}  # fmt: skip
    worst = {name: {k: max(r[name][k] for r in results) for k in results[0][name]}
             for name in ("loadgen_loop_delay_ms", "loadgen_send_late_ms")}  # fmt: skip
    duplicated = [r["duplicated"] for r in results]  # None: stock clients cannot see them
    return {
        **total,
        "duplicated": None if None in duplicated else sum(duplicated),
        "connect_ms": max(r["connect_ms"] for r in results),
        "p50_ms": pct(0.5), "p95_ms": pct(0.95), "p99_ms": pct(0.99),
        "max_ms": latencies[-1] if latencies else None,
        # Sender to its own echo (lean clients; the gateway acknowledges once it is durable).
        "ack_ms": {"p50": pct(0.5, acks), "p95": pct(0.95, acks), "p99": pct(0.99, acks),
                   "count": len(acks)} if acks else None,
        "updates_per_s": total["sent"] / duration_s,
        "deliveries_per_s": (total["observed"] + total["coalesced"]) / duration_s,
        "loadgen_processes": len(results),
        "loadgen_cpu_pct": sum(r["loadgen_cpu_pct"] for r in results),
        **worst,
    }  # fmt: skip


async def bench_gateway(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    settings = Settings()
    port = free_port()
    server = await start_gateway(Path(tempfile.mkdtemp(dir=tmp)), port)  # fresh log per run
    try:
        letters = await create_letters(port, args.letters, settings)
        rooms = [
            {"room": f"letter-{lid}", "users": [
                {"token": mint_token(settings, f"u{li}-{u}", "bench-firm", ttl_s=86400)}
                for u in range(args.users)
            ]}
            for li, lid in enumerate(letters)
        ]  # fmt: skip
        url = f"ws://127.0.0.1:{port}/v1"
        result = await run_load(url, rooms, args, server, hocuspocus=args.hocuspocus)
    finally:
        await server.stop()
    return {"server": "steno gateway (embedded log)", **result}


async def bench_reference(args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    server = await start_reference(port)
    try:
        rooms = [{"room": f"letter-ref-{i}", "users": [{} for _ in range(args.users)]}
                 for i in range(args.letters)]  # fmt: skip
        result = await run_load(f"ws://127.0.0.1:{port}", rooms, args, server)
    finally:
        await server.stop()
    return {"server": "@y/websocket-server 0.1.1 (reference)", **result}


async def build_letter(data_dir: Path, updates: int, letter: str = "bench-initial-sync") -> str:
    """A letter made of `updates` small edits, written straight into the embedded log."""
    from pycrdt import Doc, Text

    from eventlog.factory import open_log
    from eventlog.records import Entry
    from schemas.envelope import encode_event, new_event
    from schemas.events import LetterCreated, Topic

    settings = Settings(data_dir=data_dir)
    log = open_log(settings)
    await log.start()
    topic = settings.topic(Topic.LETTERS)

    def entry(payload: Any, type_: str | None = None) -> Entry:
        event = new_event(letter, payload, firm="bench-firm", user="bench", type=type_)
        _key, value, headers = encode_event(event)
        return Entry(value, headers)

    created = LetterCreated(letter_id=letter, firm_id="bench-firm", title="T", created_by="b")
    await log.append(topic, letter.encode(), [entry(created)])
    doc: Doc[Any] = Doc()
    text = doc.get("text", type=Text)
    batch: list[Entry] = []
    for i in range(updates):
        before = doc.get_state()
        text.insert(len(text), f"word{i} ")
        batch.append(entry(doc.get_update(before), "doc.update"))
        if len(batch) == 1000:
            await log.append(topic, letter.encode(), batch)
            batch = []
    if batch:
        await log.append(topic, letter.encode(), batch)
    await log.close()
    return letter


async def time_sync(url: str) -> float:
    """Milliseconds from opening the socket to having the server's sync step 2."""
    started = time.perf_counter()
    async with websockets.connect(url, max_size=None, compression=None) as ws:
        await ws.send(bytes([0, 0, 1, 0]))  # sync step 1 of an empty document
        async for message in ws:
            if isinstance(message, bytes) and message[:2] == bytes([0, 1]):
                return (time.perf_counter() - started) * 1000
    raise RuntimeError("no sync step 2")


async def bench_initial_sync(updates: int, tmp: Path) -> dict[str, Any]:
    """Cold: the letter is not in memory (the gateway unloads it after 0.2 s idle between
    samples), loaded from the log alone and then from the projector's Redis snapshot (the
    normal path: `backfill projector` folds the log into `ydoc:<id>` first). Warm: in memory."""
    from steno_collab.embedded import EmbeddedServices

    settings = Settings()
    letter = await build_letter(tmp / "sync", updates)
    token = mint_token(settings, "reader", "bench-firm", ttl_s=3600)
    result: dict[str, Any] = {"bench": "initial_sync", "updates": updates}

    async def measure(label: str, **env: str) -> None:
        port = free_port()
        server = await start_gateway(tmp / "sync", port, idle_unload_s="0.2", **env)
        url = f"ws://127.0.0.1:{port}/v1/letter-{letter}?token={token}"
        try:
            cold = []
            for _ in range(5):
                await asyncio.sleep(0.6)  # past the idle unload: the next sync loads again
                cold.append(await time_sync(url))
            async with websockets.connect(url) as holder:  # keeps the letter loaded
                await holder.send(bytes([0, 0, 1, 0]))
                warm = sorted([await time_sync(url) for _ in range(20)])
        finally:
            await server.stop()
        result[label] = {
            "cold_p50_ms": round(sorted(cold)[2], 1),
            "cold_max_ms": round(max(cold), 1),
            "warm_p50_ms": round(warm[10], 1),
            "warm_max_ms": round(warm[-1], 1),
        }

    await measure("log_only")
    async with EmbeddedServices(tmp / "services", persistent=False, postgres=False) as svc:
        env = {**os.environ, "STENO_DATA_DIR": str(tmp / "sync"), "STENO_REDIS_URL": svc.redis_url}
        fold = await asyncio.create_subprocess_exec(
            *CLI, "backfill", "projector", "--workers", "1", env=env, cwd=ROOT,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        if await fold.wait() != 0:
            raise RuntimeError("backfill projector failed")
        await measure("projector_snapshot", redis_url=svc.redis_url)
    return result


async def bench_idle(count: int, tmp: Path) -> dict[str, Any]:
    """`count` idle connections (100 letters, one user each) and the gateway's memory for them."""
    settings = Settings()
    port = free_port()
    server = await start_gateway(tmp / "idle", port)
    try:
        letters = await create_letters(port, 100, settings)
        await time_sync(_url(port, letters[0], settings, 0))  # warm up the code paths
        base_mb = server.rss_mb()
        urls = [_url(port, letters[i % 100], settings, i) for i in range(count)]
        plan = tmp / "idle.json"
        plan.write_text(json.dumps({"urls": urls, "concurrency": 100}))
        node = await asyncio.create_subprocess_exec(
            "node", str(ROOT / "bench" / "gateway_idle.js"), str(plan),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert node.stdout is not None and node.stdin is not None
        opened = json.loads(await node.stdout.readline())
        cpu0 = server.cpu_s()
        await asyncio.sleep(10)  # idle: what does holding them cost?
        idle_cpu = (server.cpu_s() - cpu0) / 10
        rss_mb = server.rss_mb()
        node.stdin.write(b"close\n")
        await node.stdin.drain()
        await node.wait()
    finally:
        await server.stop()
    per_conn_kb = (rss_mb - base_mb) * 1024 / max(1, opened["open"])
    return {"bench": "idle", **opened, "rss_before_mb": round(base_mb, 1),
            "rss_mb": round(rss_mb, 1), "kb_per_connection": round(per_conn_kb, 1),
            "idle_cpu_pct_of_core": round(100 * idle_cpu, 1)}  # fmt: skip


async def bench_unheld_reads(
    updates: int, readers: int, distinct: bool, tmp: Path
) -> dict[str, Any]:
    """`GET /v1/letters/{id}` of a letter this gateway does not hold (rebuilt from the log
    alone, no projector snapshot), `readers` at a time with a service token, 3 rounds, while a
    bystander on another letter sends an edit every 10 ms and times its delivery to a peer.
    `distinct`: each reader reads a letter of its own."""
    from pycrdt import Doc, Text, create_update_message

    settings = Settings()
    letters = [
        await build_letter(tmp / "reads", updates, f"bench-read-{i}")
        for i in range(readers if distinct else 1)
    ]
    port = free_port()
    server = await start_gateway(tmp / "reads", port, idle_unload_s="0.2")
    token = mint_token(settings, "exporter", "bench-firm", "service", ttl_s=3600)
    headers = {"Authorization": f"Bearer {token}"}
    try:
        [other] = await create_letters(port, 1, settings)
        writer_url, reader_url = (_url(port, other, settings, u) for u in (1, 2))
        async with (
            websockets.connect(writer_url, compression=None) as writer,
            websockets.connect(reader_url, compression=None) as reader,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as http,
        ):
            for ws in (writer, reader):
                await ws.send(bytes([0, 0, 1, 0]))
            await asyncio.sleep(0.5)  # past the sync replies

            async def next_update() -> None:
                while (await reader.recv())[:2] != bytes([0, 2]):
                    pass

            doc: Doc[Any] = Doc()
            text = doc.get("text", type=Text)
            delays: list[float] = []
            reading = True

            async def bystander() -> None:
                while reading:
                    before = doc.get_state()
                    text.insert(len(text), "x")
                    started = time.perf_counter()
                    await writer.send(create_update_message(doc.get_update(before)))
                    await next_update()
                    delays.append((time.perf_counter() - started) * 1000)
                    await asyncio.sleep(0.01)

            async def read(letter: str) -> float:
                started = time.perf_counter()
                (await http.get(f"/v1/letters/{letter}", timeout=120)).raise_for_status()
                return (time.perf_counter() - started) * 1000

            editing = asyncio.create_task(bystander())
            await asyncio.sleep(1.0)
            quiet = len(delays)
            cpu0, wall0 = server.cpu_s(), time.perf_counter()
            reads = []
            for _ in range(3):
                reads += await asyncio.gather(
                    *(read(letters[i % len(letters)]) for i in range(readers))
                )
            cpu = (server.cpu_s() - cpu0) / (time.perf_counter() - wall0) * 100
            reading = False
            await editing
    finally:
        await server.stop()
    busy = sorted(delays[quiet:])
    before = sorted(delays[:quiet])
    return {
        "bench": "unheld_reads",
        "updates": updates,
        "readers_at_once": readers,
        "letters": len(letters),
        "read_ms": {"p50": round(statistics.median(reads), 1), "max": round(max(reads), 1)},
        "bystander_quiet_ms": {"p50": round(before[len(before) // 2], 2)},
        "bystander_ms": {
            "samples": len(busy),
            "p50": round(busy[len(busy) // 2], 2),
            "p99": round(busy[int(len(busy) * 0.99)], 2),
            "max": round(busy[-1], 2),
        },
        "server_cpu_pct_of_core": round(cpu, 1),
    }


async def bench_rest_writes(count: int, writers: int, tmp: Path) -> dict[str, Any]:
    """`POST /v1/letters/{id}/updates`: `writers` backends at once, each posting `count` small
    updates one after another to a letter of its own (service tokens), while an editor holds
    each letter; latency is the POST's, which answers once the update is logged."""
    from pycrdt import Doc, Text

    settings = Settings()
    port = free_port()
    server = await start_gateway(tmp / "writes", port)
    headers = {
        "Authorization": f"Bearer {mint_token(settings, 'drafter', 'bench-firm', 'service')}"
    }
    latencies: list[float] = []
    try:
        letters = await create_letters(port, writers, settings)
        holders = [
            await websockets.connect(_url(port, letter, settings, i), compression=None)
            for i, letter in enumerate(letters)
        ]
        for ws in holders:
            await ws.send(bytes([0, 0, 1, 0]))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as http:

            async def write(letter: str) -> None:
                doc: Doc[Any] = Doc()
                text = doc.get("text", type=Text)
                for i in range(count):
                    before = doc.get_state()
                    text.insert(len(text), f"{i} ")
                    started = time.perf_counter()
                    r = await http.post(
                        f"/v1/letters/{letter}/updates", content=doc.get_update(before)
                    )
                    r.raise_for_status()
                    latencies.append((time.perf_counter() - started) * 1000)

            cpu0, wall0 = server.cpu_s(), time.perf_counter()
            await asyncio.gather(*(write(letter) for letter in letters))
            wall = time.perf_counter() - wall0
            cpu = (server.cpu_s() - cpu0) / wall * 100
        for ws in holders:
            await ws.close()
    finally:
        await server.stop()
    latencies.sort()
    return {
        "bench": "rest_writes",
        "writers": writers,
        "posts": len(latencies),
        "posts_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(latencies[len(latencies) // 2], 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)], 2),
        "max_ms": round(latencies[-1], 2),
        "server_cpu_pct_of_core": round(cpu, 1),
    }


def _url(port: int, letter: str, settings: Settings, user: int) -> str:
    token = mint_token(settings, f"idle-{user}", "bench-firm", ttl_s=3600)
    return f"ws://127.0.0.1:{port}/v1/letter-{letter}?token={token}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--letters", type=int, default=50)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--rate", type=float, default=5.0, help="updates/s per user")
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--drain", type=float, default=3.0)
    parser.add_argument(
        "--stagger",
        type=float,
        default=0.0,
        help="open the clients over this many seconds (spreads stock clients' awareness"
        " renewals); connect_ms then includes it",
    )
    parser.add_argument("--runs", type=int, default=1, help="runs per server; medians printed")
    parser.add_argument("--tick-ms", type=float, default=5.0, help="the generator's send timer")
    parser.add_argument(
        "--procs", type=int, default=1, help="load generator processes (letters split between)"
    )
    parser.add_argument(
        "--lean",
        action="store_true",
        help="lean clients (raw sockets that do not apply deliveries): server-bound figures",
    )
    parser.add_argument(
        "--hocuspocus",
        action="store_true",
        help="with --lean: the gateway's clients speak the Hocuspocus framing (/v1/hocuspocus)",
    )
    parser.add_argument("--target", choices=["gateway", "reference", "both"], default="both")
    parser.add_argument(
        "--initial-sync",
        type=int,
        default=0,
        metavar="UPDATES",
        help="only time the initial sync of a letter built from UPDATES edits",
    )
    parser.add_argument(
        "--idle",
        type=int,
        default=0,
        metavar="CONNECTIONS",
        help="only open CONNECTIONS idle connections and report memory",
    )
    parser.add_argument(
        "--unheld-reads",
        type=int,
        default=0,
        metavar="READERS",
        help="only time GETs of a letter not held (built from --updates edits), READERS at"
        " once, and a bystander's edits meanwhile",
    )
    parser.add_argument(
        "--updates", type=int, default=10_000, help="for --unheld-reads and --rest-writes"
    )
    parser.add_argument(
        "--distinct", action="store_true", help="for --unheld-reads: a letter per reader"
    )
    parser.add_argument(
        "--rest-writes",
        type=int,
        default=0,
        metavar="WRITERS",
        help="only time POST /v1/letters/{id}/updates: WRITERS backends, --updates posts each",
    )
    args = parser.parse_args()
    if args.hocuspocus and not args.lean:
        parser.error("--hocuspocus needs --lean (the stock clients are y-websocket's)")
    with tempfile.TemporaryDirectory() as tmp:
        if args.rest_writes:
            result = await bench_rest_writes(args.updates, args.rest_writes, Path(tmp))
            print(json.dumps(result))
            return
        if args.unheld_reads:
            result = await bench_unheld_reads(
                args.updates, args.unheld_reads, args.distinct, Path(tmp)
            )
            print(json.dumps(result))
            return
        if args.idle:
            print(json.dumps(await bench_idle(args.idle, Path(tmp))))
            return
        if args.initial_sync:
            print(json.dumps(await bench_initial_sync(args.initial_sync, Path(tmp))))
            return
        runs: dict[str, list[dict[str, Any]]] = {"gateway": [], "reference": []}
        for i in range(args.runs):
            targets = ["gateway", "reference"] if args.target == "both" else [args.target]
            for target in targets[:: 1 if i % 2 == 0 else -1]:  # alternate who goes first
                print(f"# {target} run {i + 1}, load average {_loadavg()}", file=sys.stderr)
                run = (
                    bench_gateway(args, Path(tmp)) if target == "gateway" else bench_reference(args)
                )
                runs[target].append(await run)
                print(json.dumps(runs[target][-1]), flush=True)
        if args.runs > 1:
            for target, results in runs.items():
                if results:
                    print(
                        json.dumps(
                            {"median_of": len(results), "server": target, **_medians(results)}
                        )
                    )


def _loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


MEDIAN_FIELDS = ("updates_per_s", "p50_ms", "p95_ms", "p99_ms", "max_ms",
                 "server_cpu_pct_of_core", "loadgen_cpu_pct", "server_rss_mb")  # fmt: skip


def _medians(results: list[dict[str, Any]]) -> dict[str, Any]:
    medians = {name: statistics.median(r[name] for r in results) for name in MEDIAN_FIELDS}
    acks = [r["ack_ms"] for r in results if r.get("ack_ms")]
    if len(acks) == len(results):
        medians["ack_ms"] = {
            p: statistics.median(a[p] for a in acks) for p in ("p50", "p95", "p99")
        }
    return medians


if __name__ == "__main__":
    asyncio.run(main())
