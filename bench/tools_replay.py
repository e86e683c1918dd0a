"""Benchmark: point-in-time replay of a letter with 100,000 updates.

    .venv/bin/python bench/tools_replay.py [--updates 100000] [--instants 20]

Writes one letter typed one character per `doc.update` (a real pycrdt editor, 500 updates per
append, two users alternating every 1,000 updates) into a fresh embedded log, with other
letters' records interleaved in its partition, then replays it (tools.replay, the code behind
`steno-collab replay`) at random instants, first from the log alone, then from the nearest
`letter_version` plus the log after it (the snapshotter's own consumer folds the log into a
PostgreSQL started here, autosaving every 500 updates). Each replay is checked against the
expected text. Target: <= 2 s for any instant. Figures: docs/performance.md, "Auditor tools".
"""

import argparse
import asyncio
import logging
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from pycrdt import Doc, XmlElement, XmlFragment, XmlText

from eventlog import Entry, Log
from eventlog.factory import open_log
from schemas import LetterCreated, Topic, encode_event, new_event
from schemas.settings import Settings
from snapshotter.migrate import migrate
from steno_collab.embedded import EmbeddedServices
from tools.replay import Cut, replay
from tools.sources import open_sources

# Shared with the tools tests; tests/ is not an installed package, so the root goes on the path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.tools.snapshots import snapshot_all

LETTER = "bench-letter"
ALPHABET = "abcdefghij"


def keystrokes(n: int) -> list[bytes]:
    doc: Doc[XmlFragment] = Doc()
    root = doc.get("default", type=XmlFragment)
    updates: list[bytes] = []
    doc.observe(lambda e: updates.append(e.update))
    root.children.append(XmlElement("paragraph", {}, [XmlText("")]))
    text = root.children[0].children[0]  # type: ignore[union-attr]
    for i in range(n - 1):
        text.insert(i, ALPHABET[i % 10])  # type: ignore[union-attr]
    return updates


def entry(letter_id: str, payload: bytes | LetterCreated, user: str, type: str | None) -> Entry:
    event = new_event(letter_id, payload, firm="f", user=user, type=type)
    _, value, headers = encode_event(event)
    return Entry(value, headers)


async def fill(log: Log, settings: Settings, n: int) -> list[tuple[int, int]]:
    """Append the letter; returns (record time, updates folded by then) after each append."""
    topic = settings.topic(Topic.LETTERS)
    created = LetterCreated(letter_id=LETTER, firm_id="f", title="bench", created_by="u0")
    await log.append(topic, LETTER.encode(), [entry(LETTER, created, "u0", None)])
    marks = []
    updates = keystrokes(n)
    for start in range(0, n, 500):
        user = f"u{(start // 1000) % 2}"
        chunk = [entry(LETTER, u, user, "doc.update") for u in updates[start : start + 500]]
        offsets = await log.append(topic, LETTER.encode(), chunk)
        other = f"other-{start // 500}"  # other letters' records in between
        await log.append(topic, other.encode(), [entry(other, updates[0], "x", "doc.update")])
        record = (await log.read(topic, 0, offsets[-1], 1))[0]
        marks.append((record.timestamp, start + len(chunk)))
    return marks


def expected(updates_folded: int) -> str:
    return "".join(ALPHABET[i % 10] for i in range(updates_folded - 1))


async def measure(
    settings: Settings, marks: list[tuple[int, int]], instants: int, pg: bool
) -> list[float]:
    rng = random.Random(1)
    chosen = [*sorted(rng.sample(marks, min(instants, len(marks)))), marks[-1]]
    times = []
    async with open_sources(settings, pg=pg) as src:
        for at_ms, folded in chosen:
            started = time.perf_counter()
            replayed = await replay(src, LETTER, Cut(at_ms=at_ms))
            times.append(time.perf_counter() - started)
            assert replayed.snapshot.content == expected(folded), "wrong replay"
    return times


def report(label: str, times: list[float]) -> None:
    print(
        f"{label}: {len(times)} instants, median {statistics.median(times):.3f} s, "
        f"max {max(times):.3f} s (the last instant = all updates: {times[-1]:.3f} s)"
    )


async def main(updates: int, instants: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with EmbeddedServices(Path(tmp) / "svc", persistent=False, redis=False) as svc:
            settings = Settings(
                data_dir=Path(tmp), database_url=svc.database_url, partitions=1,
                autosave_updates=500, snapshotter_batch=5000,
            )  # fmt: skip
            log = open_log(settings)
            await log.start()
            try:
                t0 = time.perf_counter()
                marks = await fill(log, settings, updates)
                print(f"wrote {updates:,} updates in {time.perf_counter() - t0:.1f} s")
                report("log alone", await measure(settings, marks, instants, pg=False))
                await migrate(svc.database_url)
                t0 = time.perf_counter()
                await snapshot_all(settings, log, settings.snapshotter_batch)
                print(f"snapshotter folded the log in {time.perf_counter() - t0:.1f} s")
                report("version + log", await measure(settings, marks, instants, pg=True))
            finally:
                await log.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=100_000)
    parser.add_argument("--instants", type=int, default=20)
    args = parser.parse_args()
    logging.getLogger("snapshotter").setLevel(logging.ERROR)  # the other letters' skips
    asyncio.run(main(args.updates, args.instants))
