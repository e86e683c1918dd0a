"""The history without PostgreSQL (the log-only source), page by page: a walk folds the letter's
log about once (the fold is kept between pages, per log and letter), and gives what one read of
the whole history gives, with records appended between pages, a poison record among them, and
concurrent requests. Counted on a real embedded log whose reads count the records they return.
"""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from eventlog.embedded import EmbeddedLog
from eventlog.factory import topic_retention
from schemas.envelope import Event, new_event
from schemas.events import Topic
from schemas.settings import Settings
from tests.attacks.panics import panicking_update
from tests.snapshotter.scripts import Clock, LetterScript, append
from tests.tools.counting_log import CountingLog
from tools import history as histories
from tools.history import Entry, Order, history, page
from tools.sources import Sources

LETTER = "L-walk"


class Letter:
    """One letter written through a hand-moved clock (one second per record)."""

    def __init__(self, log: CountingLog, settings: Settings, clock: Clock) -> None:
        self.log, self.settings, self.clock = log, settings, clock
        self.script = LetterScript(LETTER)
        self.rounds = 0

    async def write(self, events: list[Event]) -> None:
        for event in events:
            self.clock.advance(1)
            await append(self.log, self.settings.topic(Topic.LETTERS), [event])

    async def create(self) -> None:
        await self.write([self.script.created(), self.script.paragraph("u-author", "Dear")])

    async def round(self, close: bool = True) -> None:
        """A session: joins, types, comments (and leaves)."""
        s, n = self.script, self.rounds
        self.rounds += 1
        user, conn = f"user-{n % 3}", f"c{n}"
        typed = [s.type_text(user, 0, 0, "abc"[i]) for i in range(3)]
        comment = s.comment(user, f"t{n}", f"c{n}", "ok?")
        await self.write([s.joined(user, conn), *typed, comment])
        if close:
            await self.write([s.left(user, conn)])

    async def end(self) -> int:
        topic = self.settings.topic(Topic.LETTERS)
        return (await self.log.end_offsets(topic))[0]


@pytest_asyncio.fixture(loop_scope="session")
async def letter(tmp_path: Path) -> AsyncIterator[Letter]:
    settings = Settings(data_dir=tmp_path, partitions=1)
    clock = Clock()
    log = CountingLog(tmp_path / "log", 1, topic_retention(settings), clock=clock)
    await log.start()
    try:
        yield Letter(log, settings, clock)
    finally:
        await log.close()


async def whole(letter: Letter) -> list[Entry]:
    """The history read at once by a fresh log object: folded from scratch, nothing kept."""
    cold = EmbeddedLog(letter.settings.data_dir / "log", 1, readonly=True)
    await cold.start()
    try:
        return await history(Sources(letter.settings, cold), LETTER)
    finally:
        await cold.close()


async def walk(
    src: Sources,
    limit: int,
    order: Order = "asc",
    since: int | None = None,
    until: int | None = None,
) -> list[Entry]:
    walked, after = await page(src, LETTER, since, until, None, limit, order)
    while after is not None:
        more, after = await page(src, LETTER, since, until, after, limit, order)
        walked += more
    return walked


async def test_a_walk_reads_the_log_once_and_gives_the_whole_history(letter: Letter) -> None:
    await letter.create()
    for _ in range(12):
        await letter.round()
    expected, end = await whole(letter), await letter.end()
    assert len(expected) >= 50
    src = Sources(letter.settings, letter.log)
    letter.log.records = 0
    assert await walk(src, 3) == expected  # 17+ pages
    assert letter.log.records == end  # each record once (folding per page: 17+ times each)
    for limit in (1, 7, len(expected)):
        assert await walk(src, limit) == expected, limit
        assert await walk(src, limit, "desc") == expected[::-1], limit
    since, until = expected[5].at_ms, expected[-5].at_ms
    narrowed = [e for e in expected if since <= e.at_ms < until]
    assert await walk(src, 4, since=since, until=until) == narrowed
    assert await walk(src, 4, "desc", since=since, until=until) == narrowed[::-1]
    assert letter.log.records == end  # nothing appended: nothing read again


async def test_records_appended_between_pages_come_in_later_pages(letter: Letter) -> None:
    await letter.create()
    for _ in range(5):
        await letter.round()
    src = Sources(letter.settings, letter.log)
    letter.log.records = 0
    walked, after = await page(src, LETTER, limit=4)
    await letter.round(close=False)  # a session still open: its edit burst too
    more, after = await page(src, LETTER, after=after, limit=4)
    walked += more
    assert await history(src, LETTER) == await whole(letter)  # caught up with a burst open
    s = letter.script
    await letter.write([s.type_text("user-0", 0, 0, "z"), s.left("user-0", "c5")])
    await letter.round()
    while after is not None:
        more, after = await page(src, LETTER, after=after, limit=4)
        walked += more
    expected = await whole(letter)
    assert walked == expected
    assert {"session-start", "edit", "comment.created", "session-end", "version"} <= {
        e.kind
        for e in expected
        if e.offset >= 5 * 6 + 2  # of the two later rounds
    }
    assert letter.log.records == await letter.end()  # each record read once


async def test_a_poison_record_mid_walk_is_skipped_and_folded_past_once(letter: Letter) -> None:
    await letter.create()
    for _ in range(3):
        await letter.round()
    src = Sources(letter.settings, letter.log)
    letter.log.records = 0
    walked, after = await page(src, LETTER, limit=2)
    before = await letter.end()
    s = letter.script
    poison = new_event(LETTER, panicking_update(s.doc.client_id, 0), firm=s.firm,
                       user="mallory", type="doc.update")  # fmt: skip
    await letter.write([poison])
    for _ in range(2):
        await letter.round()
    while after is not None:
        more, after = await page(src, LETTER, after=after, limit=2)
        walked += more
    expected, end = await whole(letter), await letter.end()
    assert walked == expected
    assert all(e.offset != before and e.user != "mallory" for e in walked)
    assert expected[-1].offset > before  # the rounds after the poison are in it
    # The first fold, then the records appended since (the panic among them), then all again
    # with the poison quarantined; later pages fold on from there, not from scratch.
    assert letter.log.records == before + (end - before) + end
    assert await walk(src, 2) == expected
    assert letter.log.records == before + (end - before) + end


async def test_concurrent_pages_of_a_letter_fold_it_once(letter: Letter) -> None:
    await letter.create()
    for _ in range(6):
        await letter.round()
    src = Sources(letter.settings, letter.log)
    letter.log.records = 0
    orders: list[Order] = ["asc", "desc", "asc", "desc"]
    pages = await asyncio.gather(*(page(src, LETTER, limit=5, order=o) for o in orders))
    expected = await whole(letter)
    for (entries, _), order in zip(pages, orders, strict=True):
        assert entries == (expected[:5] if order == "asc" else expected[::-1][:5])
    assert letter.log.records == await letter.end()


async def test_the_folds_kept_are_bounded(letter: Letter) -> None:
    """The few letters read last keep their fold; reading another drops the oldest."""
    src = Sources(letter.settings, letter.log)
    ids = [f"L-{i}" for i in range(histories._CACHED + 1)]
    for letter_id in ids:
        s = LetterScript(letter_id)
        await append(letter.log, letter.settings.topic(Topic.LETTERS),
                     [s.created(), s.joined("u", "c"), s.left("u", "c")])  # fmt: skip
    for letter_id in ids:
        assert len(await history(src, letter_id)) >= 3
    letter.log.records = 0
    await history(src, ids[-1])
    assert letter.log.records == 0  # kept
    await history(src, ids[0])
    assert letter.log.records == await letter.end()  # dropped: folded again
