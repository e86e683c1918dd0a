"""Benchmark: `backfill projector` and `backfill snapshotter` rebuilding from the log.

    .venv/bin/python bench/tools_backfill.py [--letters 500] [--updates 200] [--runs 2]

Writes `letters` x `updates` typing updates (a real pycrdt editor per letter, 1-3 characters
per update, three users taking turns, letters interleaved as live traffic would be) plus each
letter's letter.created / session.joined / session.left into a fresh embedded log (8
partitions), then times `tools.backfill.backfill(..., reset=True)` (the code behind
`steno-collab backfill projector|snapshotter --from-beginning --reset`) into Redis and
PostgreSQL started here (fsync on), and checks the result with `verify` on a sample of letters.
Targets: projector >= 30,000 events/s, snapshotter >= 10,000 events/s. Figures:
docs/performance.md, "Auditor tools".
"""

import argparse
import asyncio
import io
import logging
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import uvloop
from pycrdt import Doc, XmlElement, XmlFragment, XmlText

from eventlog import Entry, Log
from eventlog.factory import open_log
from schemas import (
    LetterCreated,
    SessionJoined,
    SessionLeft,
    Topic,
    UserRef,
    encode_event,
    new_event,
)
from schemas.events import Payload
from schemas.settings import Settings
from steno_collab.embedded import EmbeddedServices
from tools.backfill import backfill
from tools.progress import Meter
from tools.sources import open_sources
from tools.verify import verify_letter

USERS = ("u0", "u1", "u2")


def typing(n: int, rng: random.Random) -> list[bytes]:
    doc: Doc[XmlFragment] = Doc()
    root = doc.get("default", type=XmlFragment)
    updates: list[bytes] = []
    doc.observe(lambda e: updates.append(e.update))
    root.children.append(XmlElement("paragraph", {}, [XmlText("")]))
    text = root.children[0].children[0]  # type: ignore[union-attr]
    size = 0
    for _ in range(n - 1):
        chunk = "".join(rng.choice("abcdef ") for _ in range(rng.randint(1, 3)))
        text.insert(rng.randint(0, size), chunk)  # type: ignore[union-attr]
        size += len(chunk)
    return updates


def entry(letter_id: str, payload: Payload | bytes, user: str, type: str | None = None) -> Entry:
    event = new_event(letter_id, payload, firm="f", user=user, conn=f"c-{user}", type=type)
    _, value, headers = encode_event(event)
    return Entry(value, headers)


def sessions(letter_id: str, kind: type[SessionJoined] | type[SessionLeft]) -> list[Entry]:
    return [
        entry(letter_id, kind(conn_id=f"c-{u}", user=UserRef(id=u, name=u), role="editor"), u)
        for u in USERS
    ]


async def fill(log: Log, settings: Settings, letters: int, updates: int) -> int:
    topic, rng = settings.topic(Topic.LETTERS), random.Random(1)
    ids = [f"letter-{i:05d}" for i in range(letters)]
    typed = {lid: typing(updates, rng) for lid in ids}
    total = 0
    for lid in ids:
        created = LetterCreated(letter_id=lid, firm_id="f", title=lid, created_by="u0")
        total += len(
            await log.append(
                topic, lid.encode(), [entry(lid, created, "u0"), *sessions(lid, SessionJoined)]
            )
        )
    step = 20  # appends of 20 updates per letter, letters interleaved
    for start in range(0, updates, step):
        appends = []
        for lid in ids:
            chunk = typed[lid][start : start + step]
            user = USERS[(start // step) % 3]
            appends.append(
                log.append(topic, lid.encode(), [entry(lid, u, user, "doc.update") for u in chunk])
            )
        total += sum(len(o) for o in await asyncio.gather(*appends))
    for lid in ids:
        total += len(await log.append(topic, lid.encode(), sessions(lid, SessionLeft)))
    return total


async def timed(settings: Settings, target: str, workers: int = 1) -> float:
    async with open_sources(
        settings, redis=target == "projector", pg=target == "snapshotter"
    ) as src:
        started = time.perf_counter()
        await backfill(src, target, reset=True, meter=Meter(out=io.StringIO()), workers=workers)
        return time.perf_counter() - started


async def main(letters: int, updates: int, runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with EmbeddedServices(Path(tmp) / "svc", persistent=True) as svc:
            settings = Settings(
                data_dir=Path(tmp), redis_url=svc.redis_url, database_url=svc.database_url
            )
            log = open_log(settings)
            await log.start()
            try:
                t0 = time.perf_counter()
                total = await fill(log, settings, letters, updates)
                took = time.perf_counter() - t0
                print(f"wrote {total:,} events ({letters} letters) in {took:.1f} s")
                cores = os.cpu_count() or 1
                for target, workers in (("projector", 1), ("projector", cores), ("snapshotter", 1)):
                    walls = [await timed(settings, target, workers) for _ in range(runs)]
                    print(
                        f"backfill {target} ({workers} process{'es' if workers > 1 else ''}): "
                        + ", ".join(f"{total / w:,.0f}" for w in walls)
                        + f" events/s; median {total / statistics.median(walls):,.0f} events/s"
                    )
                async with open_sources(settings, redis=True, pg=True) as src:
                    sample = [f"letter-{i:05d}" for i in range(0, letters, max(letters // 10, 1))]
                    bad = [f for lid in sample for f in await verify_letter(src, lid) if not f.ok]
                    print(f"verify of {len(sample)} letters: {len(bad)} mismatch(es)")
            finally:
                await log.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--letters", type=int, default=500)
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    uvloop.run(main(args.letters, args.updates, args.runs))  # what the CLI runs on
