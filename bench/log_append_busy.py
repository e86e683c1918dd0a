"""Embedded-log append latency while the event loop is busy, by GIL switch interval.

The gateway's relay of an update waits for its append; the log's writer thread needs the GIL
after each SQLite call, and a busy event loop holds it for up to the switch interval. This runs
50 appenders (one entry each every 20 ms) next to a loop kept ~80 % busy (4 ms of Python work,
1 ms asleep), once per switch interval, each in a fresh process, alternating, and prints the
median of the runs' p50/p99 append latency.

    .venv/bin/python bench/log_append_busy.py --runs 3
"""

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eventlog import Entry  # noqa: E402
from eventlog.factory import open_log  # noqa: E402
from schemas.envelope import raw_headers  # noqa: E402
from schemas.events import Topic  # noqa: E402
from schemas.settings import Settings  # noqa: E402

SECONDS = 8.0


async def measure() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), partitions=8)
        log = open_log(settings)
        await log.start()
        topic = settings.topic(Topic.LETTERS)
        stop = time.monotonic() + SECONDS
        latencies: list[float] = []

        async def busy() -> None:
            while time.monotonic() < stop:
                started = time.perf_counter()
                while time.perf_counter() - started < 0.004:
                    pass
                await asyncio.sleep(0.001)

        async def appender(i: int) -> None:
            letter = f"letter-{i}"
            while time.monotonic() < stop:
                headers = raw_headers(letter, "doc.update", firm="f", user="u", conn="c", gw="g")
                started = time.perf_counter()
                await log.append(topic, letter.encode(), [Entry(b"x" * 60, headers)])
                latencies.append(time.perf_counter() - started)
                await asyncio.sleep(0.02)

        try:
            await asyncio.gather(busy(), *(appender(i) for i in range(50)))
        finally:
            await log.close()
    latencies.sort()
    return {
        "appends": len(latencies),
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
    }


def child(interval: float) -> None:
    import uvloop

    sys.setswitchinterval(interval)
    print(json.dumps(uvloop.run(measure())))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--intervals", type=float, nargs="+", default=[0.005, 0.0005])
    parser.add_argument("--child", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        return child(args.child)
    results: dict[float, list[dict[str, float]]] = {i: [] for i in args.intervals}
    for _ in range(args.runs):
        for interval in args.intervals:
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(interval)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            results[interval].append(json.loads(out))
    for interval, runs in results.items():
        p50 = statistics.median(r["p50_ms"] for r in runs)
        p99 = statistics.median(r["p99_ms"] for r in runs)
        print(f"switch interval {interval * 1000:g} ms: append p50 {p50:.1f} ms, p99 {p99:.1f} ms")


if __name__ == "__main__":
    main()
