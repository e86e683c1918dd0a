"""The gateway's append path: one task per letter vs. one `Batcher` for all letters.

50 letters queue one doc.update each every 20 ms (2,500 appends/s, like the gateway bench at 500
connections) into the embedded log for 10 s, the way a room does: synchronously, from a loop
callback. `per-letter` is the design before gateway/live/appender.Batcher (each letter's own
task awaits `Log.append` for its queue); `batched` is the gateway's. Each run is a fresh
process, modes alternating; prints each run and the medians of main-thread CPU, log-writer
thread CPU and append latency (queued -> durable).

    .venv/bin/python bench/append_batching.py --runs 3
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import uvloop

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eventlog import Entry, Log  # noqa: E402
from eventlog.factory import open_log  # noqa: E402
from gateway.live.appender import Batcher  # noqa: E402
from gateway.metrics import Metrics  # noqa: E402
from schemas.envelope import raw_headers  # noqa: E402
from schemas.events import Topic  # noqa: E402
from schemas.settings import Settings  # noqa: E402

LETTERS, INTERVAL_S, SECONDS = 50, 0.02, 10.0


class PerLetter:
    """The earlier design: a letter's FIFO appended by its own task, one append at a time."""

    def __init__(self, log: Log, topic: str, key: bytes) -> None:
        self._log, self._topic, self._key = log, topic, key
        self._queue: list[tuple[Entry, Callable[[], None]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def put(self, entry: Entry, done: Callable[[], None]) -> None:
        self._queue.append((entry, done))
        self._wake.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch, self._queue = self._queue, []
                async with asyncio.timeout(10):
                    await self._log.append(self._topic, self._key, [e for e, _ in batch])
                for _, done in batch:
                    done()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


def thread_cpu_s(thread: threading.Thread) -> float:
    fields = Path(f"/proc/self/task/{thread.native_id}/stat").read_text().rsplit(")", 1)[1]
    user, system = fields.split()[11:13]
    return (int(user) + int(system)) / os.sysconf("SC_CLK_TCK")


async def measure(mode: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), partitions=8)
        log = open_log(settings)
        await log.start()
        topic = settings.topic(Topic.LETTERS)
        batcher = Batcher(log, topic, Metrics(), timeout_s=10)
        keys = [f"letter-{i}".encode() for i in range(LETTERS)]
        put: list[Callable[[Entry, Callable[[], None]], None]]
        per_letter = [PerLetter(log, topic, key) for key in keys]
        if mode == "batched":
            put = [batcher.appender(key, lambda *_: None).put for key in keys]
        else:
            put = [appender.put for appender in per_letter]
        loop = asyncio.get_running_loop()
        latencies: list[float] = []
        stop = time.monotonic() + SECONDS

        def tick(i: int) -> None:
            if time.monotonic() > stop:
                return
            headers = raw_headers(keys[i].decode(), "doc.update", firm="f", user="u", conn="c")
            queued = time.perf_counter()
            put[i](
                Entry(b"x" * 60, headers), lambda: latencies.append(time.perf_counter() - queued)
            )
            loop.call_later(INTERVAL_S, tick, i)

        threads = {t.name: t for t in threading.enumerate()}
        main, writer = threads["MainThread"], threads["eventlog-writer"]
        before = thread_cpu_s(main), thread_cpu_s(writer)
        for i in range(LETTERS):
            loop.call_later(i * INTERVAL_S / LETTERS, tick, i)
        await asyncio.sleep(SECONDS + 0.5)
        after = thread_cpu_s(main), thread_cpu_s(writer)
        for appender in per_letter:
            await appender.close()
        await batcher.close()
        await log.close()
    latencies.sort()
    return {
        "mode": mode,  # type: ignore[dict-item]
        "appends": len(latencies),
        "main_cpu_s": round(after[0] - before[0], 2),
        "writer_cpu_s": round(after[1] - before[1], 2),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mode", choices=["per-letter", "batched"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:  # one measurement, in this fresh process
        print(json.dumps(uvloop.run(measure(args.mode))))
        return
    results: dict[str, list[dict[str, float]]] = {"per-letter": [], "batched": []}
    for i in range(args.runs):
        for mode in ("per-letter", "batched")[:: 1 if i % 2 == 0 else -1]:
            out = subprocess.run(
                [sys.executable, __file__, "--mode", mode], capture_output=True, text=True
            )
            if out.returncode:
                raise SystemExit(out.stderr)
            results[mode].append(json.loads(out.stdout))
            print(out.stdout.strip(), flush=True)
    for mode, runs in results.items():
        medians = {k: statistics.median(r[k] for r in runs) for k in runs[0] if k != "mode"}
        print(json.dumps({"median_of": len(runs), "mode": mode, **medians}))


if __name__ == "__main__":
    main()
