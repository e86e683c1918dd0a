"""Replay and diff read a letter's partition from the letter's creation, not from the partition's
first record: the snapshotter's `letters` row holds its `letter.created` offset (and a letter
missing from it was created past the snapshotter's position). A 2-record letter behind another
letter's thousands of records reads its own few, on the CLI's code and over REST alike; from the
log alone (no PostgreSQL) the whole partition is read, as before. Counted on a real embedded log
whose reads count the records they return."""

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
import pytest_asyncio

from eventlog.factory import topic_retention
from eventlog.records import Entry
from schemas.envelope import encode_event
from schemas.events import Topic
from schemas.settings import Settings
from steno_collab.services import gateway_app
from tests.snapshotter.scripts import Clock, LetterScript, append
from tests.tools.counting_log import CountingLog
from tests.tools.rest import auth
from tests.tools.snapshots import snapshot_all
from tools.diff import diff
from tools.replay import Cut, LetterNotFound, NotYetCreated, replay, replay_existing
from tools.sources import Sources
from tools.timefmt import iso

BIG, SMALL, LATE = "L-big", "L-small", "L-late"
OTHERS = 3000  # the big letter's records before the small one's


@dataclass
class Partition:
    log: CountingLog
    settings: Settings
    pg: asyncpg.Pool
    created: int  # the small letter's `letter.created`: offset
    created_ms: int  # and record time

    def reads(self) -> int:
        """Records the log's reads returned since the last call."""
        count, self.log.records = self.log.records, 0
        return count


@pytest_asyncio.fixture(loop_scope="session")
async def partition(tmp_path: Path, db: str) -> AsyncIterator[Partition]:
    """One partition: the big letter's records, then the small letter's (both folded by the
    snapshotter), then a letter created since (not in its tables yet)."""
    settings = Settings(data_dir=tmp_path, partitions=1, database_url=db)
    topic, clock = settings.topic(Topic.LETTERS), Clock()
    log = CountingLog(tmp_path / "log", 1, topic_retention(settings), clock=clock)
    await log.start()
    pg = await asyncpg.create_pool(db, min_size=1, max_size=2)
    try:
        big = LetterScript(BIG)
        events = [big.created(), *(big.paragraph("u", f"p{i}") for i in range(OTHERS - 1))]
        await log.append(topic, BIG.encode(), [Entry(*encode_event(e)[1:]) for e in events])
        clock.advance(10)
        small = LetterScript(SMALL)
        [created] = await append(log, topic, [small.created("alice")])
        clock.advance(1)
        await append(log, topic, [small.paragraph("bob", "Dear Sir,")])
        await snapshot_all(settings, log)
        clock.advance(1)
        late = LetterScript(LATE)
        await append(log, topic, [late.created("carol"), late.paragraph("carol", "Late")])
        created_ms = (await log.read(topic, 0, created, 1))[0].timestamp
        yield Partition(log, settings, pg, created, created_ms)
    finally:
        await pg.close()
        await log.close()


async def test_replay_and_diff_read_from_the_letters_creation(partition: Partition) -> None:
    p, mine = partition, 4  # from the small letter's creation: its 2 records and the late 2
    src = Sources(p.settings, p.log, pg=p.pg)
    p.reads()
    assert (await replay(src, SMALL)).snapshot.content == "Dear Sir,"
    assert p.reads() <= mine
    at_creation = await replay(src, SMALL, Cut(at_ms=p.created_ms))
    assert (at_creation.position, at_creation.last_ms) == (p.created + 1, p.created_ms)
    assert p.reads() <= mine

    result = await diff(src, SMALL, Cut(at_ms=p.created_ms), Cut())
    assert [(h.added, h.authors) for h in result.hunks] == [(["Dear Sir,"], ["bob"])]
    assert p.reads() <= 3 * mine  # both ends' replays and the walk between them

    # Before its creation (the 404's "created at" included), by instant or by position.
    for cut in (Cut(at_ms=p.created_ms - 1), Cut(offset=p.created), Cut(offset=p.created // 2)):
        with pytest.raises(NotYetCreated, match=re.escape(f"; created at {iso(p.created_ms)}")):
            await replay_existing(src, SMALL, cut)
        assert p.reads() <= 2 * mine
    with pytest.raises(NotYetCreated):
        await diff(src, SMALL, Cut(at_ms=p.created_ms - 1), Cut())
    assert p.reads() <= 3 * mine

    # Not in the snapshotter's tables yet: from its position, where such a letter begins.
    assert (await replay(src, LATE)).snapshot.content == "Late"
    with pytest.raises(LetterNotFound):
        await replay(src, "L-none")
    assert p.reads() <= 3 * 2


async def test_the_log_alone_reads_the_partition_as_before(partition: Partition) -> None:
    src = Sources(partition.settings, partition.log)
    partition.reads()
    assert (await replay(src, SMALL)).snapshot.content == "Dear Sir,"
    assert partition.reads() >= OTHERS


async def test_rest_replay_and_diff_read_from_the_letters_creation(partition: Partition) -> None:
    p = partition
    app = gateway_app(p.settings, p.log, None, p.pg)
    base, headers = f"/v1/letters/{SMALL}", auth(p.settings, firm="firm-1")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
        p.reads()
        replayed = await http.get(f"{base}/replay", headers=headers)
        assert replayed.json()["content"] == "Dear Sir,"
        at = {"from": iso(p.created_ms), "to": "2999-01-01T00:00:00Z"}
        diffed = await http.get(f"{base}/diff", params=at, headers=headers)
        assert diffed.json()["hunks"][0]["added"] == ["Dear Sir,"]
        before = await http.get(
            f"{base}/replay", params={"at": iso(p.created_ms - 1)}, headers=headers
        )
        assert before.status_code == 404, before.text
        assert p.reads() <= 6 * 4


async def test_a_letters_row_of_another_log_layout_is_not_where_it_begins(
    partition: Partition,
) -> None:
    """A row written under another topic or partition count (a moved or re-partitioned log)
    names an offset of another partition: reading from it would skip the letter's records."""
    p = partition
    src = Sources(p.settings, p.log, pg=p.pg)
    await p.pg.execute("UPDATE letters SET log_partition = 7 WHERE letter_id = $1", SMALL)
    try:
        p.reads()
        assert (await replay(src, SMALL)).snapshot.content == "Dear Sir,"
        assert p.reads() >= OTHERS  # from the partition's start, as without a row
    finally:
        await p.pg.execute("UPDATE letters SET log_partition = 0 WHERE letter_id = $1", SMALL)
