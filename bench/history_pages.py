"""Benchmark: walking a letter's history page by page without PostgreSQL (the log-only source).

    .venv/bin/python bench/history_pages.py [--records 20000] [--limits 100,1000] [--runs 3]

Writes one letter of `records` records into a fresh embedded log (in rounds of ten: a session
joins, types seven characters one `doc.update` each, comments and leaves; another letter's
record between rounds in the same partition), then walks its history (tools.history.page, the
code behind `GET .../history` on a gateway without PostgreSQL) from the first page to the last,
`limit` entries a page, oldest first, then newest first. Each walk is checked against the whole
history read at once. Prints, per limit and order, the median over `runs` walks of the first
page, the other pages and the whole walk, and how many records the walk read from the log.
Figures: docs/performance.md, "Auditor tools".
"""

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from pycrdt import Doc, XmlElement, XmlFragment, XmlText

from eventlog import Entry, Log
from eventlog.factory import open_log
from schemas import (
    Anchor,
    CommentCreated,
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
from tools import history
from tools.sources import Sources

LETTER = "bench-letter"


def entry(letter_id: str, payload: Payload | bytes, user: str, type: str | None = None) -> Entry:
    event = new_event(letter_id, payload, firm="f", user=user, conn=f"c-{user}", type=type)
    _, value, headers = encode_event(event)
    return Entry(value, headers)


async def fill(log: Log, settings: Settings, records: int) -> None:
    topic = settings.topic(Topic.LETTERS)
    created = LetterCreated(letter_id=LETTER, firm_id="f", title="bench", created_by="u0")
    await log.append(topic, LETTER.encode(), [entry(LETTER, created, "u0")])
    doc: Doc[XmlFragment] = Doc()
    root = doc.get("default", type=XmlFragment)
    updates: list[bytes] = []
    doc.observe(lambda e: updates.append(e.update))
    root.children.append(XmlElement("paragraph", {}, [XmlText("")]))
    text: Any = root.children[0].children[0]  # type: ignore[union-attr]
    anchor = Anchor(start="AA==", end="AA==", quote="x")
    for n in range((records - 1) // 10):
        user = UserRef(id=f"u{n % 3}", name=f"U{n % 3}")
        round_ = [entry(LETTER, SessionJoined(conn_id=f"c{n}", user=user, role="editor"), user.id)]
        for i in range(7):
            text.insert(len(str(text)), "abcdefg"[i])
            round_.append(entry(LETTER, updates.pop(0), user.id, "doc.update"))
        comment = CommentCreated(thread_id=f"t{n}", comment_id=f"c{n}", anchor=anchor, body="?")
        round_.append(entry(LETTER, comment, user.id))
        round_.append(
            entry(LETTER, SessionLeft(conn_id=f"c{n}", user=user, role="editor"), user.id)
        )
        await log.append(topic, LETTER.encode(), round_)
        other = f"other-{n}"
        await log.append(topic, other.encode(), [entry(other, b"\x00\x00", "x", "doc.update")])


class Counting:
    """The log, counting the records its reads return (a walk's cost in records read)."""

    def __init__(self, log: Log) -> None:
        self.log, self.records = log, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.log, name)

    async def read(self, topic: str, partition: int, offset: int, limit: int) -> Any:
        batch = await self.log.read(topic, partition, offset, limit)
        self.records += len(batch)
        return batch


async def walk(
    src: Sources, limit: int, order: history.Order
) -> tuple[list[history.Entry], list[float]]:
    entries: list[history.Entry] = []
    times: list[float] = []
    after = None
    while True:
        started = time.perf_counter()
        got, after = await history.page(src, LETTER, after=after, limit=limit, order=order)
        times.append(time.perf_counter() - started)
        entries += got
        if after is None:
            return entries, times


async def main(records: int, limits: list[int], runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), partitions=1)
        log = open_log(settings)
        await log.start()
        try:
            t0 = time.perf_counter()
            await fill(log, settings, records)
            print(f"wrote {records:,} records in {time.perf_counter() - t0:.1f} s")
            whole = await history.history(Sources(settings, log), LETTER)
            print(f"{len(whole):,} entries")
            for limit in limits:
                for order in ("asc", "desc"):
                    firsts, rests, totals, reads = [], [], [], []
                    for _ in range(runs):
                        counting = Counting(log)
                        # A fresh log object per walk: nothing cached from the walk before.
                        src = Sources(settings, counting)  # type: ignore[arg-type]
                        started = time.perf_counter()
                        walked, times = await walk(src, limit, order)
                        totals.append(time.perf_counter() - started)
                        assert walked == (whole if order == "asc" else whole[::-1]), "wrong walk"
                        firsts.append(times[0])
                        rests.append(statistics.median(times[1:] or [0.0]))
                        reads.append(counting.records)
                    pages = len(times)
                    print(
                        f"limit {limit:>5} {order:<4}: {pages} pages, first page"
                        f" {statistics.median(firsts) * 1000:.0f} ms, other pages median"
                        f" {statistics.median(rests) * 1000:.1f} ms, whole walk"
                        f" {statistics.median(totals):.2f} s, {statistics.median(reads):,.0f}"
                        f" records read (medians of {runs})"
                    )
        finally:
            await log.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--limits", default="100,1000")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("snapshotter").setLevel(logging.ERROR)
    asyncio.run(main(args.records, [int(x) for x in args.limits.split(",")], args.runs))
